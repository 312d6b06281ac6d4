"""What an export looks like: the S3 keys, the CSV columns, and each member as one line.

CSV follows Mailchimp's own audience export, so the file can be re-imported or read by tools
that know that layout: ``Email Address``, one column per merge field (by its name, in display
order), then ``MEMBER_RATING, OPTIN_TIME, OPTIN_IP, CONFIRM_TIME, CONFIRM_IP, LATITUDE,
LONGITUDE, GMTOFF, DSTOFF, TIMEZONE, CC, REGION, LAST_CHANGED, LEID, EUID, NOTES, TAGS``, with
Mailchimp's ``YYYY-MM-DD HH:MM:SS`` UTC times; RFC 4180 quoting and CRLF line ends. Mailchimp
splits its export into one file per status; ours holds every status, so ``STATUS`` (and
``LANGUAGE``) follow, after the columns Mailchimp has. JSON Lines holds each member object as
the API returns it, without ``_links``.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from chimpbridge.models.export import CsvColumn, ExportFormat, ExportMode

PREFIX = "mailchimp"
STAGING_PREFIX = f"{PREFIX}/_staging"

MAILCHIMP_TRAILING_COLUMNS = (
    "MEMBER_RATING",
    "OPTIN_TIME",
    "OPTIN_IP",
    "CONFIRM_TIME",
    "CONFIRM_IP",
    "LATITUDE",
    "LONGITUDE",
    "GMTOFF",
    "DSTOFF",
    "TIMEZONE",
    "CC",
    "REGION",
    "LAST_CHANGED",
    "LEID",
    "EUID",
    "NOTES",
    "TAGS",
)
EXTRA_COLUMNS = ("STATUS", "LANGUAGE")

# What a CSV row needs, and nothing else: Mailchimp serialises less, we parse less.
CSV_MEMBER_FIELDS = (
    "email_address",
    "status",
    "merge_fields",
    "member_rating",
    "timestamp_signup",
    "ip_signup",
    "timestamp_opt",
    "ip_opt",
    "location",
    "last_changed",
    "web_id",
    "unique_email_id",
    "last_note",
    "tags",
    "language",
)


class ExportedMember(NamedTuple):
    """One member, ready to write: its line, plus what paging and the manifest need."""

    last_changed: int
    status: str
    line: str


MemberEncoder = Callable[[dict[str, Any]], ExportedMember]


def epoch_seconds(timestamp: str) -> int:
    """``2024-05-01T10:00:00+00:00`` -> epoch seconds."""
    return int(datetime.fromisoformat(timestamp).timestamp())


def iso(epoch: int) -> str:
    """Epoch seconds as Mailchimp writes them in the API."""
    return datetime.fromtimestamp(epoch, UTC).isoformat()


# ---------------------------------------------------------------- keys
def object_base_name(mode: ExportMode, window_before: int, run_id: str) -> str:
    moment = datetime.fromtimestamp(window_before, UTC)
    return f"{mode}-{moment:%Y%m%dT%H%M%SZ}-{run_id[:12]}"


def audience_prefix(list_id: str) -> str:
    return f"{PREFIX}/audiences/{list_id}/"


def data_key(list_id: str, fmt: ExportFormat, window_before: int, base_name: str) -> str:
    """Hive-style: ``dt=`` is the day the window ends (UTC); ``format=`` keeps CSV and JSON
    Lines in separate folders, so an Athena table reads one format only."""
    day = datetime.fromtimestamp(window_before, UTC)
    return f"{audience_prefix(list_id)}dt={day:%Y-%m-%d}/format={fmt}/{base_name}.{fmt}.gz"


def manifest_key(list_id: str, fmt: ExportFormat, window_before: int, base_name: str) -> str:
    """Next to the data but outside its folder: Athena reads every file of a table's folder."""
    day = datetime.fromtimestamp(window_before, UTC)
    return f"{audience_prefix(list_id)}dt={day:%Y-%m-%d}/manifests/{base_name}.{fmt}.json"


def tail_key(run_id: str, invocation: int) -> str:
    return f"{STAGING_PREFIX}/{run_id}/tail-{invocation:05d}"


# ---------------------------------------------------------------- CSV
class _LastLine:
    """A file for csv.writer that keeps the one line each writerow() writes."""

    __slots__ = ("line",)

    def __init__(self) -> None:
        self.line = ""

    def write(self, text: str) -> int:
        self.line = text
        return len(text)


_writers = threading.local()


def _csv_line(values: Sequence[Any]) -> str:
    """One CSV record (RFC 4180: minimal quoting, CRLF; a field with a CR or LF is quoted).
    The C writer does the quoting; one writer per thread, as page workers encode in parallel."""
    state = getattr(_writers, "state", None)
    if state is None:
        sink = _LastLine()
        state = _writers.state = (csv.writer(sink), sink)
    writer, sink = state
    writer.writerow(values)
    return str(sink.line)


def csv_columns(merge_fields: Sequence[CsvColumn]) -> list[str]:
    return ["Email Address", *(field.name for field in merge_fields), *MAILCHIMP_TRAILING_COLUMNS, *EXTRA_COLUMNS]


def csv_header(merge_fields: Sequence[CsvColumn]) -> str:
    return _csv_line(csv_columns(merge_fields))


def _export_time(value: Any) -> str:
    """API ``2024-05-01T10:00:00+00:00`` -> export ``2024-05-01 10:00:00`` (UTC)."""
    if not value:
        return ""
    text = str(value)
    if not text.endswith("+00:00"):
        text = datetime.fromisoformat(text).astimezone(UTC).isoformat()
    return text[:10] + " " + text[11:19]


def _merge_value(value: Any) -> Any:
    if isinstance(value, dict):  # an address: Mailchimp's export joins its parts with two spaces
        parts = ("addr1", "addr2", "city", "state", "zip", "country")
        return "  ".join(str(value.get(part) or "") for part in parts).strip()
    return value


def csv_encoder(merge_fields: Sequence[CsvColumn]) -> MemberEncoder:
    tags = [field.tag for field in merge_fields]

    def encode(member: dict[str, Any]) -> ExportedMember:
        merge = member.get("merge_fields") or {}
        location = member.get("location") or {}
        # Mailchimp reports an unknown location as zeros; its export leaves the cells empty.
        located = bool(location.get("latitude") or location.get("longitude") or location.get("country_code"))
        note = member.get("last_note") or {}
        status = member.get("status") or ""
        last_changed = member["last_changed"]
        line = _csv_line(
            [
                member.get("email_address"),
                *(_merge_value(merge.get(tag)) for tag in tags),
                member.get("member_rating"),
                _export_time(member.get("timestamp_signup")),
                member.get("ip_signup"),
                _export_time(member.get("timestamp_opt")),
                member.get("ip_opt"),
                location.get("latitude") if located else None,
                location.get("longitude") if located else None,
                location.get("gmtoff") if located else None,
                location.get("dstoff") if located else None,
                location.get("timezone"),
                location.get("country_code"),
                location.get("region"),
                _export_time(last_changed),
                member.get("web_id"),
                member.get("unique_email_id"),
                note.get("note"),
                ",".join(f'"{tag.get("name", "")}"' for tag in member.get("tags") or ()),
                status,
                member.get("language"),
            ]
        )
        return ExportedMember(epoch_seconds(last_changed), status, line)

    return encode


# ---------------------------------------------------------------- JSON Lines
def jsonl_encoder() -> MemberEncoder:
    def encode(member: dict[str, Any]) -> ExportedMember:
        member.pop("_links", None)
        line = json.dumps(member, ensure_ascii=False, separators=(",", ":")) + "\n"
        return ExportedMember(epoch_seconds(member["last_changed"]), str(member.get("status") or ""), line)

    return encode


# ---------------------------------------------------------------- per format
class Layout(NamedTuple):
    """How one format is fetched (the page projection) and written."""

    format: ExportFormat
    columns: list[str]
    header: str
    encode: MemberEncoder
    projection: dict[str, list[str]]


def layout_for(fmt: ExportFormat, merge_fields: Sequence[CsvColumn]) -> Layout:
    if fmt == "csv":
        fields = [f"members.{name}" for name in CSV_MEMBER_FIELDS] + ["total_items"]
        return Layout(
            "csv",
            csv_columns(merge_fields),
            csv_header(merge_fields),
            csv_encoder(merge_fields),
            {"fields": fields},
        )
    return Layout("jsonl", [], "", jsonl_encoder(), {"exclude_fields": ["members._links", "_links"]})
