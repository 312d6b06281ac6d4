"""Reading the file: CSV with a header row or JSON Lines, either optionally gzip, streamed.

Rows are numbered from 1, the first data row (a CSV header is row 0), the same way in every
invocation: a run that resumes reads the file again from the start and passes over the rows
its checkpoint has applied. Memory holds one row at a time, whatever the file's size.

Bytes that are not UTF-8 are kept as lone surrogates (``surrogateescape``), so the signup
path's text rules reject the one row that holds them instead of the whole file failing.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from chimpbridge.errors import ImportFailed, InvalidRequest
from chimpbridge.models.audience_import import ImportFormat
from chimpbridge.models.checks import read_json

GZIP_MAGIC = b"\x1f\x8b"
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
# A cell larger than this is no contact data (csv's own default is 128 KiB).
MAX_CELL_CHARACTERS = 64 * 1024


@dataclass(frozen=True)
class Row:
    """One data row: its number and its values by column (JSON Lines: by member)."""

    number: int
    values: dict[str, Any]
    # What is wrong with the row as a row (a CSV row longer than its header, a line that is
    # not a JSON object), before any value is looked at.
    problem: str | None = None


def file_format(key: str) -> ImportFormat:
    name = key.lower().removesuffix(".gz")
    return "jsonl" if name.endswith(JSONL_SUFFIXES) else "csv"


def read_rows(stream: IO[bytes], fmt: ImportFormat) -> tuple[list[str] | None, Iterator[Row]]:
    """The CSV header (None for JSON Lines) and the rows after it."""
    binary: IO[bytes] = stream
    peek = getattr(stream, "peek", None)
    if peek is not None and bytes(peek(2))[:2] == GZIP_MAGIC:
        binary = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
    if fmt == "jsonl":
        return None, _jsonl_rows(text)
    return _csv_rows(text)


def _csv_rows(text: io.TextIOWrapper) -> tuple[list[str], Iterator[Row]]:
    csv.field_size_limit(MAX_CELL_CHARACTERS)
    reader = csv.reader(text, strict=False)
    try:
        header = [column.strip() for column in next(reader)]
    except StopIteration:
        raise ImportFailed("the file is empty: a CSV import needs a header row") from None
    except (csv.Error, gzip.BadGzipFile, EOFError) as error:
        raise ImportFailed(f"the CSV header cannot be read ({error})") from None
    if len(set(header)) != len(header):
        raise ImportFailed("the CSV header names a column twice")

    def rows() -> Iterator[Row]:
        number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except (csv.Error, gzip.BadGzipFile, EOFError) as error:
                raise ImportFailed(f"the file cannot be read after data row {number} ({error})") from None
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # a blank line is no row
            number += 1
            if len(cells) > len(header):
                yield Row(number, {}, f"the row has {len(cells)} cells and the header {len(header)}")
                continue
            yield Row(number, dict(zip(header, cells, strict=False)))

    return header, rows()


def _jsonl_rows(text: io.TextIOWrapper) -> Iterator[Row]:
    number = 0
    while True:
        try:
            line = text.readline()
        except (gzip.BadGzipFile, EOFError) as error:
            raise ImportFailed(f"the file cannot be read after data row {number} ({error})") from None
        if not line:
            return
        if not line.strip():
            continue
        number += 1
        try:
            document = read_json(line)  # as a request body is read: no NaN, long numbers, NUL or deep nesting
        except InvalidRequest as invalid:
            fields = [error.field for error in invalid.errors if error.field != "body"]
            problem = f"not valid data at {', '.join(fields)}" if fields else "the line is not valid JSON"
            yield Row(number, {}, problem)
            continue
        if not isinstance(document, dict):
            yield Row(number, {}, "the line is not a JSON object")
            continue
        yield Row(number, document)
