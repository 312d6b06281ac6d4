"""What a run tells: the per-row results (``<key>.results.csv.gz``), the summary
(``<key>.summary.json``) and the event on the bundle's bus.

The results are written a part per checkpoint (a gzip member each, staged in S3) and joined
once every row is applied: a retried chunk writes its part again under the same number, so no
row is ever reported twice. Addresses are masked in the results unless the run is configured
to write them in full; row numbers point into the file either way.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable

from chimpbridge.logic.audience_import.members import RowResult
from chimpbridge.models.audience_import import (
    RESULTS_SUFFIX,
    SUMMARY_SUFFIX,
    ImportCheckpoint,
    ImportSummary,
)
from chimpbridge.observability import mask_emails

RESULTS_COLUMNS = ("row", "email", "outcome", "reason", "detail")
EVENT_SOURCE = "chimpbridge.import"
FINISHED = "Audience Import Finished"


def results_key(key: str) -> str:
    return key + RESULTS_SUFFIX


def summary_key(key: str) -> str:
    return key + SUMMARY_SUFFIX


def _gzip_csv(rows: Iterable[Iterable[object]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    for row in rows:
        writer.writerow(row)
    # mtime 0: the same rows make the same bytes, whichever attempt writes them.
    return gzip.compress(text.getvalue().encode("utf-8", "surrogateescape"), compresslevel=6, mtime=0)


def header() -> bytes:
    return _gzip_csv([RESULTS_COLUMNS])


def part(results: Iterable[RowResult], *, full_emails: bool) -> bytes:
    return _gzip_csv(
        (
            result.number,
            result.email if full_emails else mask_emails(result.email),
            result.outcome,
            result.reason or "",
            result.detail or "",
        )
        for result in sorted(results, key=lambda item: item.number)
    )


def summary(checkpoint: ImportCheckpoint, *, emails: str, outcome: str, error: str | None) -> ImportSummary:
    assert checkpoint.finished_at is not None
    return ImportSummary(
        run_id=checkpoint.run_id,
        list_id=checkpoint.list_id,
        outcome=outcome,
        error=error,
        object=checkpoint.object,
        format=checkpoint.format or "csv",
        results_key=results_key(checkpoint.object.key),
        started_at=checkpoint.started_at,
        finished_at=checkpoint.finished_at,
        counts=checkpoint.counts,
        trust_consent=checkpoint.trust_consent,
        emails_in_report=emails,
        invocations=checkpoint.invocations,
        interruptions=checkpoint.interruptions,
    )


def event_detail(summary_document: ImportSummary) -> str:
    """The event's detail (docs/events/audience-import-finished.schema.json): the summary's
    figures and where to find the rest; never an address."""
    counts = summary_document.counts
    detail = {
        "schema_version": 1,
        "run_id": summary_document.run_id,
        "list_id": summary_document.list_id,
        "outcome": summary_document.outcome,
        "bucket": summary_document.object.bucket,
        "key": summary_document.object.key,
        "etag": summary_document.object.etag,
        "results_key": summary_document.results_key,
        "summary_key": summary_key(summary_document.object.key),
        "rows": counts.rows,
        "created": counts.created,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "skipped": counts.skipped,
        "skipped_by_reason": dict(sorted(counts.skipped_by_reason.items())),
        "started_at": _utc(summary_document.started_at.isoformat()),
        "finished_at": _utc(summary_document.finished_at.isoformat()),
    }
    if summary_document.error:
        detail["error"] = summary_document.error
    return json.dumps(detail, separators=(",", ":"))


def _utc(text: str) -> str:
    return text.replace("+00:00", "Z")
