"""Audience export models: the job (the schedule's input, and the Step Functions loop state that
the function returns and receives again), the checkpoint kept between invocations, and the
manifest written next to every export.

Times inside the export are epoch seconds (Mailchimp's ``last_changed`` has second
resolution); they become ISO 8601 only in the manifest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MemberStatus = Literal["subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived"]
ExportMode = Literal["full", "incremental"]
ExportFormat = Literal["csv", "jsonl"]
ListId = str


class AudienceOutcome(BaseModel):
    """What happened to one audience of the job."""

    list_id: ListId
    run_id: str
    outcome: Literal["exported", "already-exported", "aborted"]
    rows: int = 0
    manifest_key: str | None = None


class ExportProgress(BaseModel):
    """Where the audience in progress stands (shown in the Step Functions console)."""

    list_id: ListId
    run_id: str
    rows: int
    pages: int
    invocations: int


class ExportJob(BaseModel):
    """The schedule's input; the function returns it with its progress and gets it back.

    ``scheduled_time`` (EventBridge Scheduler's ``<aws.scheduler.scheduled-time>``) names the
    schedule tick: a second run of the same tick is a no-op. Without it every job is a new run.
    ``execution`` is the Step Functions execution name (the state machine adds it); it owns the
    export lock, so retries of the same execution resume at once.
    """

    model_config = ConfigDict(extra="forbid")

    audiences: list[ListId] = Field(min_length=1, max_length=100)
    mode: ExportMode = "incremental"
    format: ExportFormat = "csv"
    # None: every member the API lists by default (all statuses but archived).
    statuses: list[MemberStatus] | None = Field(default=None, min_length=1)
    scheduled_time: datetime | None = None
    action: Literal["export", "abort"] = "export"
    execution: str | None = Field(default=None, max_length=256)
    owner: str | None = Field(default=None, max_length=256)
    tick: str | None = Field(default=None, max_length=64)
    position: int = Field(default=0, ge=0)
    results: list[AudienceOutcome] = Field(default_factory=list)
    progress: ExportProgress | None = None
    done: bool = False
    # The Step Functions Catch output, when the state machine asks for an abort.
    error: dict[str, Any] | None = None

    @field_validator("audiences")
    @classmethod
    def _audience_ids(cls, value: list[str]) -> list[str]:
        cleaned = [item.strip() for item in value]
        if any(not item.isalnum() for item in cleaned):
            raise ValueError("audience ids are letters and digits, such as a1b2c3d4e5")
        return list(dict.fromkeys(cleaned))

    @field_validator("statuses")
    @classmethod
    def _sorted_statuses(cls, value: list[MemberStatus] | None) -> list[MemberStatus] | None:
        return None if value is None else sorted(set(value))


class UploadedPart(BaseModel):
    number: int
    etag: str
    sha256: str  # base64, as S3 checks it
    size: int


class WriterState(BaseModel):
    """A gzip stream being uploaded in parts, as far as it survives an invocation."""

    # None until the stream first leaves memory (its first part, or a suspension); a stream
    # that never does is put whole when it is sealed.
    upload_id: str | None = None
    parts: list[UploadedPart] = Field(default_factory=list)
    crc32: int = 0  # of the uncompressed bytes so far: the gzip trailer needs it at the end
    raw_bytes: int = 0
    # Compressed bytes written after the last part, parked in S3 until the next invocation.
    tail_key: str | None = None
    tail_size: int = 0
    # False once the stream crossed an invocation: hashlib state cannot be saved, so the
    # object's SHA-256 is then computed by reading it back once it is complete.
    single_pass: bool = True


class CsvColumn(BaseModel):
    """A merge field as a CSV column: its tag (key in ``merge_fields``), name and type."""

    tag: str
    name: str
    type: str = "text"


class Checkpoint(BaseModel):
    """Everything needed to continue a run in the next invocation. Members with
    ``last_changed`` before ``resume_since`` of the current segment are in the object already."""

    run_id: str
    owner: str
    list_id: ListId
    mode: ExportMode
    format: ExportFormat
    statuses: list[MemberStatus] | None
    tick: str
    scheduled_time: datetime | None
    started_at: datetime
    key: str
    manifest_key: str
    window_since: int | None
    window_before: int
    previous_watermark: int | None
    # CSV: the merge fields (columns) in display order; None until they are fetched.
    merge_fields: list[CsvColumn] | None = None
    segment: int = 0
    resume_since: int | None = None
    rows: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    pages: int = 0
    retries: int = 0
    restarts: int = 0
    invocations: int = 1
    writer: WriterState
    # exporting: pages into the stream; completing: the stream is sealed (every part uploaded,
    # counts final), the upload may or may not be complete; finalizing: the object is complete.
    phase: Literal["exporting", "completing", "finalizing"] = "exporting"
    object_bytes: int | None = None
    object_sha256: str | None = None
    object_version: str | None = None
    finished_at: datetime | None = None


class ManifestObject(BaseModel):
    bucket: str
    key: str
    format: ExportFormat
    compression: Literal["gzip"] = "gzip"
    bytes: int
    sha256: str  # hex, of the object as stored
    uncompressed_bytes: int
    parts: list[UploadedPart]


class ManifestWindow(BaseModel):
    since_last_changed: datetime | None  # inclusive; None: from the beginning
    before_last_changed: datetime  # exclusive


class Manifest(BaseModel):
    """Written last, once the object is complete: a run without a manifest did not happen."""

    manifest_version: Literal[1] = 1
    run_id: str
    list_id: ListId
    mode: ExportMode
    statuses: list[MemberStatus] | None
    scheduled_time: datetime | None
    started_at: datetime
    finished_at: datetime
    window: ManifestWindow
    watermark: datetime
    previous_watermark: datetime | None
    object: ManifestObject
    rows: int
    counts_by_status: dict[str, int]
    columns: list[str]
    pages: int
    invocations: int
    retries: int

    @classmethod
    def of(cls, checkpoint: Checkpoint, *, bucket: str, columns: list[str]) -> Manifest:
        """The manifest of the run ``checkpoint`` describes, once its object is complete."""
        assert checkpoint.finished_at is not None and checkpoint.object_sha256 is not None
        watermark = datetime.fromtimestamp(checkpoint.window_before, UTC)
        return cls(
            run_id=checkpoint.run_id,
            list_id=checkpoint.list_id,
            mode=checkpoint.mode,
            statuses=checkpoint.statuses,
            scheduled_time=checkpoint.scheduled_time,
            started_at=checkpoint.started_at,
            finished_at=checkpoint.finished_at,
            window=ManifestWindow(since_last_changed=_moment(checkpoint.window_since), before_last_changed=watermark),
            watermark=watermark,
            previous_watermark=_moment(checkpoint.previous_watermark),
            object=ManifestObject(
                bucket=bucket,
                key=checkpoint.key,
                format=checkpoint.format,
                bytes=checkpoint.object_bytes or 0,
                sha256=checkpoint.object_sha256,
                uncompressed_bytes=checkpoint.writer.raw_bytes,
                parts=checkpoint.writer.parts,
            ),
            rows=checkpoint.rows,
            counts_by_status=dict(sorted(checkpoint.counts.items())),
            columns=columns,
            pages=checkpoint.pages,
            invocations=checkpoint.invocations,
            retries=checkpoint.retries,
        )


def _moment(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)
