"""Audience import models: the job (the state machine's input, and the loop state the function
returns and receives again), the field map that limits what an import may set, the checkpoint
kept between invocations, and the summary written next to every imported file.

A job starts as the S3 "Object Created" event EventBridge delivers (or as a job written by
hand: ``{"object": {"bucket", "key", "etag", "size"}}``); :meth:`ImportJob.from_event` reads
either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ImportFormat = Literal["csv", "jsonl"]
RowOutcome = Literal["created", "updated", "unchanged", "skipped"]
StatusIfNew = Literal["pending", "subscribed", "unsubscribed", "transactional"]
IMPORT_PREFIX = "imports/"
# What the import writes next to the file it read: never an import itself.
RESULTS_SUFFIX = ".results.csv.gz"
SUMMARY_SUFFIX = ".summary.json"


class ImportObject(BaseModel):
    """The S3 object to import, as the "Object Created" event names it. The ETag names the
    content: the same content uploaded again is the same run."""

    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)
    etag: str = Field(min_length=1, max_length=128)
    size: int = Field(default=0, ge=0)
    version_id: str | None = Field(default=None, max_length=1024)


class ImportCounts(BaseModel):
    """Every data row lands in exactly one of created, updated, unchanged, skipped."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    skipped_by_reason: dict[str, int] = Field(default_factory=dict)

    def add(self, outcome: RowOutcome, reason: str | None = None) -> None:
        self.rows += 1
        setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome == "skipped":
            key = reason or "unknown"
            self.skipped_by_reason[key] = self.skipped_by_reason.get(key, 0) + 1

    @property
    def add_up(self) -> bool:
        applied = self.created + self.updated + self.unchanged + self.skipped
        return applied == self.rows and sum(self.skipped_by_reason.values()) == self.skipped


class ImportProgress(BaseModel):
    """Where the run stands (shown in the Step Functions console)."""

    run_id: str
    rows: int
    invocations: int


class ImportOutcome(BaseModel):
    run_id: str | None = None
    list_id: str | None = None
    outcome: Literal["imported", "already-imported", "ignored", "aborted"]
    reason: str | None = None
    counts: ImportCounts | None = None
    results_key: str | None = None
    summary_key: str | None = None


class ImportJob(BaseModel):
    """The function's input and output; ``done`` ends the state machine's loop.

    ``execution`` is the Step Functions execution name (the state machine adds it); it owns the
    audience's import lock, so retries of the same execution resume at once.
    """

    model_config = ConfigDict(extra="forbid")

    object: ImportObject
    action: Literal["import", "abort"] = "import"
    execution: str | None = Field(default=None, max_length=256)
    owner: str | None = Field(default=None, max_length=256)
    progress: ImportProgress | None = None
    result: ImportOutcome | None = None
    done: bool = False
    # The Step Functions Catch output, when the state machine asks for an abort.
    error: dict[str, Any] | None = None

    @classmethod
    def from_event(cls, event: Any) -> ImportJob:
        """A job, from an S3 "Object Created" event (EventBridge) or from a job. Raises
        ValueError (or pydantic's ValidationError) for anything else."""
        if isinstance(event, dict) and event.get("source") == "aws.s3":
            if event.get("detail-type") != "Object Created":
                raise ValueError(f"not an Object Created event: {event.get('detail-type')!r}")
            detail = event.get("detail") or {}
            found = detail.get("object") or {}
            job: dict[str, Any] = {
                "object": {
                    "bucket": (detail.get("bucket") or {}).get("name"),
                    "key": found.get("key"),
                    "etag": str(found.get("etag") or found.get("eTag") or "").strip('"'),
                    "size": found.get("size") or 0,
                    "version_id": found.get("version-id"),
                }
            }
            # What the state machine adds to its input (its execution's name; an abort and why).
            job.update({name: event[name] for name in ("execution", "owner", "action", "error") if name in event})
            return cls.model_validate(job)
        return cls.model_validate(event)


def list_id_of(key: str) -> str | None:
    """``imports/<list_id>/<anything>`` -> the audience id; None for any other key."""
    if not key.startswith(IMPORT_PREFIX):
        return None
    parts = key[len(IMPORT_PREFIX) :].split("/", 1)
    if len(parts) != 2 or not parts[1] or parts[1].endswith("/"):
        return None
    return parts[0] if parts[0].isalnum() and len(parts[0]) <= 32 else None


def is_report(key: str) -> bool:
    return key.endswith((RESULTS_SUFFIX, SUMMARY_SUFFIX))


class ImportCheckpoint(BaseModel):
    """Everything needed to continue a run in the next invocation. Data rows numbered below
    ``next_row`` (1 = the first row after the header) and those in ``done_ahead`` are applied
    and in the results parts already."""

    run_id: str
    owner: str
    list_id: str
    object: ImportObject
    started_at: datetime
    trust_consent: bool
    # The audience's merge fields when the run started (tag -> name): every invocation reads the
    # columns the same way.
    merge_fields: dict[str, str] = Field(default_factory=dict)
    next_row: int = 1
    done_ahead: list[int] = Field(default_factory=list)
    counts: ImportCounts = Field(default_factory=ImportCounts)
    parts: int = 0
    invocations: int = 1
    interruptions: int = 0
    # importing: rows into Mailchimp; publishing: every row is applied, the report is being written.
    phase: Literal["importing", "publishing"] = "importing"
    format: ImportFormat | None = None
    finished_at: datetime | None = None


class ImportSummary(BaseModel):
    """Written once every row is applied and reported, next to the file: ``<key>.summary.json``."""

    summary_version: Literal[1] = 1
    run_id: str
    list_id: str
    # imported: every row applied and reported; aborted: the run stopped for good (error says
    # why); the rows reported were applied, the others were not.
    outcome: Literal["imported", "aborted"]
    error: str | None = None
    object: ImportObject
    format: ImportFormat
    results_key: str
    started_at: datetime
    finished_at: datetime
    counts: ImportCounts
    trust_consent: bool
    emails_in_report: Literal["masked", "full"]
    invocations: int
    interruptions: int
