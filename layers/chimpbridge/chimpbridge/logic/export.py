"""Audience export, one step per invocation: export (part of) one audience, return the job.

EventBridge Scheduler starts a Step Functions execution with the job; the state machine calls
this step until the job says ``done`` (locally, ``make invoke`` does the same). One step:

1. a finished run of this schedule tick (``run#`` record) -> nothing to do for this audience;
2. take (or renew) the stream's lock, else :class:`ExportBusy` (the state machine waits, retries);
3. continue the run's checkpoint, or start one: window ``[watermark, now - settle)`` (full runs
   start at the beginning), a multipart upload, the CSV columns;
4. page through the window (:mod:`export_paging`) into the gzip stream (:mod:`export_writer`),
   checkpointing at every part, until the window is done or the invocation's budget is spent;
5. done: complete the upload, write the manifest, then commit watermark + run record and drop
   checkpoint and lock in one transaction. Not done: park the tail, checkpoint, return.

Failures: a transient one (Mailchimp 429/5xx after retries, network, S3/DynamoDB throttling)
keeps the checkpoint and raises :class:`ExportInterrupted`, so a retry resumes. Anything else
aborts the run (upload aborted, staging removed, checkpoint and lock dropped) and raises
:class:`ExportFailed`; nothing partial stays visible. ``action: abort`` (the state machine's
catch) does the same cleanup for a run that ran out of retries.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import requests
from botocore.exceptions import BotoCoreError, ClientError

from chimpbridge import clients, settings
from chimpbridge.dal import aws
from chimpbridge.dal.export_state import ExportState, stream_key
from chimpbridge.errors import ExportBusy, ExportFailed, ExportInterrupted, UpstreamError
from chimpbridge.logic import export_layout as layout_module
from chimpbridge.logic.export_layout import Layout, iso, layout_for
from chimpbridge.logic.export_paging import FetchedPage, PageRequest, PageSource, WindowPager
from chimpbridge.logic.export_writer import MIB, MultipartGzipWriter, abort_upload, create_upload
from chimpbridge.models.export import (
    AudienceOutcome,
    Checkpoint,
    CsvColumn,
    ExportJob,
    ExportProgress,
    Manifest,
    ManifestObject,
    ManifestWindow,
)
from chimpbridge.observability import MetricUnit, count, logger, metrics
from chimpbridge.transport import remaining_invocation_seconds

PROGRESS_LOG_SECONDS = 10.0
_TRANSIENT_AWS_CODES = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
}


def run(job: ExportJob) -> ExportJob:
    """One step of the job; the result is the next step's input."""
    if job.done:
        return job
    job = _identified(job)
    audience = AudienceExport(job, job.audiences[job.position])
    if job.action == "abort":
        job.results.append(audience.abort())
        job.done = True
        job.progress = None
        return job
    step = audience.step()
    if isinstance(step, AudienceOutcome):
        job.results.append(step)
        job.position += 1
        job.progress = None
        job.done = job.position >= len(job.audiences)
    else:
        job.progress = step
    return job


def _identified(job: ExportJob) -> ExportJob:
    """Fix the tick (which run this is) and the owner (who holds the lock) on first sight."""
    if job.tick is None:
        job.tick = job.scheduled_time.isoformat() if job.scheduled_time else job.execution or uuid.uuid4().hex
    if job.owner is None:
        job.owner = job.execution or uuid.uuid4().hex
    return job


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, UpstreamError):
        return error.transient
    if isinstance(error, ClientError):
        details = error.response
        status = int(details.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status >= 500 or details.get("Error", {}).get("Code") in _TRANSIENT_AWS_CODES
    return isinstance(error, BotoCoreError | requests.RequestException)


class Budget:
    """Whether this invocation may start another page."""

    def __init__(self, config: settings.ExportSettings) -> None:
        self.config = config
        self.pages = 0

    def keep_going(self) -> bool:
        if self.config.max_pages_per_invocation and self.pages >= self.config.max_pages_per_invocation:
            return False
        remaining = remaining_invocation_seconds()
        if remaining is not None and remaining <= self.config.stop_before_deadline_seconds:
            return False
        self.pages += 1
        return True


def page_source(client: Any, list_id: str, layout: Layout) -> PageSource:
    """Pages of members through the official SDK, turned into lines in the worker thread (so
    only the lines, not the parsed pages, wait for their turn to be written)."""
    lists = client.lists

    def fetch(request: PageRequest) -> FetchedPage:
        params: dict[str, Any] = {
            "count": request.count,
            "offset": request.offset,
            "sort_field": "last_changed",
            "sort_dir": "ASC",
            "before_last_changed": iso(request.before),
            **layout.projection,
        }
        if request.since is not None:
            params["since_last_changed"] = iso(request.since)
        if request.status is not None:
            params["status"] = request.status
        body = lists.get_list_members_info(list_id, **params)
        members = body.get("members") or []
        return FetchedPage(int(body.get("total_items") or 0), [layout.encode(member) for member in members])

    return fetch


class AudienceExport:
    def __init__(self, job: ExportJob, list_id: str) -> None:
        assert job.tick is not None and job.owner is not None
        self.job = job
        self.list_id = list_id
        self.config = settings.load(settings.ExportSettings)
        stream = stream_key(list_id, job.format, job.statuses)
        self.state = ExportState(self.config.state_table, stream)
        self.run_id = hashlib.sha256(f"{stream}|{job.mode}|{job.tick}".encode()).hexdigest()[:20]
        self.owner = job.owner
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = clients.marketing(self.config.concurrency)
        return self._client

    # ------------------------------------------------------------ one step
    def step(self) -> AudienceOutcome | ExportProgress:
        if self.state.run_finished(self.run_id):
            logger.info("export already done for this tick", extra={"list_id": self.list_id, "run_id": self.run_id})
            count("ExportAlreadyDone")
            return AudienceOutcome(list_id=self.list_id, run_id=self.run_id, outcome="already-exported")
        self.state.acquire(self.owner, self.run_id, self.config.lock_lease_seconds)
        checkpoint = self.state.checkpoint()
        if checkpoint is not None and checkpoint.run_id != self.run_id:
            logger.warning(
                "discarding the checkpoint of a run that died",
                extra={"list_id": self.list_id, "stale_run_id": checkpoint.run_id},
            )
            self._clean_up(checkpoint)
            checkpoint = None
        try:
            return self._step(checkpoint)
        except ExportBusy:
            raise
        except Exception as error:
            if _is_transient(error):
                logger.warning("export interrupted; the checkpoint is kept", extra={"list_id": self.list_id})
                raise ExportInterrupted(f"audience {self.list_id}: {error}") from error
            logger.exception("export failed; aborting the run", extra={"list_id": self.list_id})
            current = self.state.checkpoint()
            if current is not None and current.run_id == self.run_id:
                self._clean_up(current)
            self.state.release(self.owner)
            count("ExportAborted")
            raise ExportFailed(f"audience {self.list_id}: {error}") from error

    def _step(self, checkpoint: Checkpoint | None) -> AudienceOutcome | ExportProgress:
        started = time.monotonic()
        if checkpoint is None:
            checkpoint = self._begin()
        else:
            checkpoint.invocations += 1
            checkpoint.owner = self.owner
        if checkpoint.phase == "exporting":
            session = ExportSession(self, checkpoint)
            finished = session.run()
            session.report(time.monotonic() - started)
            if not finished:
                return ExportProgress(
                    list_id=self.list_id,
                    run_id=self.run_id,
                    rows=checkpoint.rows,
                    pages=checkpoint.pages,
                    invocations=checkpoint.invocations,
                )
            session.complete()
        return self._publish(checkpoint)

    def _begin(self) -> Checkpoint:
        now = int(time.time())
        previous = self.state.watermark()
        since = previous if self.job.mode == "incremental" else None
        before = now - self.config.settle_seconds
        if since is not None:
            before = max(before, since)  # two runs within the settle time: an empty window
        merge_fields = self._merge_fields() if self.job.format == "csv" else []
        base = layout_module.object_base_name(self.job.mode, before, self.run_id)
        key = layout_module.data_key(self.list_id, self.job.format, before, base)
        upload = create_upload(
            self.config.bucket,
            key,
            content_type="application/gzip",
            metadata={"run-id": self.run_id, "list-id": self.list_id, "format": self.job.format},
        )
        checkpoint = Checkpoint(
            run_id=self.run_id,
            owner=self.owner,
            list_id=self.list_id,
            mode=self.job.mode,
            format=self.job.format,
            statuses=self.job.statuses,
            tick=str(self.job.tick),
            scheduled_time=self.job.scheduled_time,
            started_at=datetime.fromtimestamp(now, UTC),
            key=key,
            manifest_key=layout_module.manifest_key(self.list_id, self.job.format, before, base),
            window_since=since,
            window_before=before,
            previous_watermark=previous,
            merge_fields=merge_fields,
            resume_since=since,
            writer=upload,
        )
        self.state.save_checkpoint(checkpoint)
        logger.info(
            "export started",
            extra={
                "list_id": self.list_id,
                "run_id": self.run_id,
                "mode": self.job.mode,
                "format": self.job.format,
                "since_last_changed": iso(since) if since is not None else None,
                "before_last_changed": iso(before),
                "key": key,
            },
        )
        return checkpoint

    def _merge_fields(self) -> list[CsvColumn]:
        body = self.client.lists.get_list_merge_fields(self.list_id, count=1000)
        fields = sorted(body.get("merge_fields") or [], key=lambda field: field.get("display_order", 0))
        return [CsvColumn(tag=field["tag"], name=field["name"], type=field.get("type", "text")) for field in fields]

    def _publish(self, checkpoint: Checkpoint) -> AudienceOutcome:
        """Manifest last, then the transaction that makes the run count."""
        assert checkpoint.finished_at is not None and checkpoint.object_sha256 is not None
        layout = layout_for(checkpoint.format, checkpoint.merge_fields)
        manifest = Manifest(
            run_id=checkpoint.run_id,
            list_id=checkpoint.list_id,
            mode=checkpoint.mode,
            statuses=checkpoint.statuses,
            scheduled_time=checkpoint.scheduled_time,
            started_at=checkpoint.started_at,
            finished_at=checkpoint.finished_at,
            window=ManifestWindow(
                since_last_changed=_moment(checkpoint.window_since),
                before_last_changed=datetime.fromtimestamp(checkpoint.window_before, UTC),
            ),
            watermark=datetime.fromtimestamp(checkpoint.window_before, UTC),
            previous_watermark=_moment(checkpoint.previous_watermark),
            object=ManifestObject(
                bucket=self.config.bucket,
                key=checkpoint.key,
                format=checkpoint.format,
                bytes=checkpoint.object_bytes or 0,
                sha256=checkpoint.object_sha256,
                uncompressed_bytes=checkpoint.writer.raw_bytes,
                parts=checkpoint.writer.parts,
            ),
            rows=checkpoint.rows,
            counts_by_status=dict(sorted(checkpoint.counts.items())),
            columns=layout.columns,
            pages=checkpoint.pages,
            invocations=checkpoint.invocations,
            retries=checkpoint.retries,
        )
        aws.s3().put_object(
            Bucket=self.config.bucket,
            Key=checkpoint.manifest_key,
            Body=manifest.model_dump_json(indent=2).encode(),
            ContentType="application/json",
        )
        self.state.commit(
            checkpoint, manifest_key=checkpoint.manifest_key, finished_at=int(checkpoint.finished_at.timestamp())
        )
        count("ExportCompleted")
        logger.info(
            "export published",
            extra={
                "list_id": self.list_id,
                "run_id": self.run_id,
                "rows": checkpoint.rows,
                "bytes": checkpoint.object_bytes,
                "manifest_key": checkpoint.manifest_key,
                "invocations": checkpoint.invocations,
            },
        )
        return AudienceOutcome(
            list_id=self.list_id,
            run_id=self.run_id,
            outcome="exported",
            rows=checkpoint.rows,
            manifest_key=checkpoint.manifest_key,
        )

    # ------------------------------------------------------------ aborting
    def abort(self) -> AudienceOutcome:
        """Give up the run: nothing of it stays visible, the lock is free, the watermark stays."""
        checkpoint = self.state.checkpoint()
        if checkpoint is not None and checkpoint.run_id == self.run_id:
            self._clean_up(checkpoint)
        self.state.release(self.owner)
        count("ExportAborted")
        logger.warning(
            "export aborted",
            extra={"list_id": self.list_id, "run_id": self.run_id, "error": (self.job.error or {}).get("Error")},
        )
        return AudienceOutcome(list_id=self.list_id, run_id=self.run_id, outcome="aborted")

    def _clean_up(self, checkpoint: Checkpoint) -> None:
        s3 = aws.s3()
        abort_upload(self.config.bucket, checkpoint.key, checkpoint.writer.upload_id)
        if checkpoint.writer.tail_key:
            s3.delete_object(Bucket=self.config.bucket, Key=checkpoint.writer.tail_key)
        if checkpoint.phase == "finalizing":
            # Complete but never published: remove the object (this version) and any manifest.
            if checkpoint.object_version:
                s3.delete_object(Bucket=self.config.bucket, Key=checkpoint.key, VersionId=checkpoint.object_version)
            else:
                s3.delete_object(Bucket=self.config.bucket, Key=checkpoint.key)
            s3.delete_object(Bucket=self.config.bucket, Key=checkpoint.manifest_key)
        self.state.delete_checkpoint(checkpoint.run_id)


def _moment(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class ExportSession:
    """The exporting part of one invocation: pages in, gzip parts out, checkpoints between."""

    def __init__(self, export: AudienceExport, checkpoint: Checkpoint) -> None:
        self.export = export
        self.checkpoint = checkpoint
        self.config = export.config
        self.layout = layout_for(checkpoint.format, checkpoint.merge_fields)
        self.writer = MultipartGzipWriter.open(
            self.config.bucket, checkpoint.key, checkpoint.writer, self.config.part_size_mib * MIB
        )
        if self.writer.state.raw_bytes == 0 and self.layout.header:
            self.writer.write(self.layout.header.encode())
        self.transport = export.client.api_client.transport
        self.retries_at_start = self.transport.retries
        self.retries_before = checkpoint.retries
        self.pages_before = checkpoint.pages
        self.rows_at_start = checkpoint.rows
        self.pages_this_invocation = 0
        self.restarts_before = checkpoint.restarts
        self.restarts = 0
        self._pager: WindowPager | None = None
        self.started = time.monotonic()
        self.last_log = self.started

    def run(self) -> bool:
        """Export until the window is done (True) or the budget is spent (False)."""
        checkpoint = self.checkpoint
        segments: list[str | None] = list(checkpoint.statuses) if checkpoint.statuses else [None]
        budget = Budget(self.config)
        with ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="export-page") as executor:
            source = page_source(self.export.client, checkpoint.list_id, self.layout)
            for index in range(checkpoint.segment, len(segments)):
                since = checkpoint.resume_since if index == checkpoint.segment else checkpoint.window_since
                pager = WindowPager(
                    source,
                    executor,
                    self.config.concurrency,
                    segments[index],
                    since,
                    checkpoint.window_before,
                    budget.keep_going,
                )
                closed_pages = self.pages_this_invocation
                self._pager = pager
                for batch in pager:
                    self._write(batch.members)
                    self.pages_this_invocation = closed_pages + pager.stats.pages
                    if self.writer.part_due():
                        self.writer.cut_part()
                        if batch.resume_since is None:
                            self._save(index + 1, checkpoint.window_since)
                        else:
                            self._save(index, batch.resume_since)
                    self._log_progress()
                self.pages_this_invocation = closed_pages + pager.stats.pages
                self.restarts += pager.stats.restarts
                self._pager = None
                if not pager.finished:
                    self.writer.suspend(layout_module.tail_key(checkpoint.run_id, checkpoint.invocations))
                    self._save(index, pager.resume_since)
                    return False
                checkpoint.segment, checkpoint.resume_since = index + 1, checkpoint.window_since
        return True

    def complete(self) -> None:
        """Finish the object and remember that it is complete (phase ``finalizing``)."""
        completed = self.writer.finish()
        checkpoint = self.checkpoint
        checkpoint.phase = "finalizing"
        checkpoint.object_bytes = completed.bytes
        checkpoint.object_sha256 = completed.sha256
        checkpoint.object_version = completed.version_id
        checkpoint.finished_at = datetime.now(UTC).replace(microsecond=0)
        self._save(checkpoint.segment, checkpoint.resume_since)

    def _write(self, members: list[layout_module.ExportedMember]) -> None:
        if not members:
            return
        counts = self.checkpoint.counts
        for member in members:
            counts[member.status] = counts.get(member.status, 0) + 1
        self.checkpoint.rows += len(members)
        self.writer.write("".join(member.line for member in members).encode())

    def _save(self, segment: int, resume_since: int | None) -> None:
        checkpoint = self.checkpoint
        checkpoint.segment = segment
        checkpoint.resume_since = resume_since
        checkpoint.pages = self.pages_before + self.pages_this_invocation
        checkpoint.retries = self.retries_before + (self.transport.retries - self.retries_at_start)
        current = self._pager.stats.restarts if self._pager is not None else 0
        checkpoint.restarts = self.restarts_before + self.restarts + current
        checkpoint.writer = self.writer.state.model_copy(deep=True)
        self.export.state.save_checkpoint(checkpoint)
        for key in self.writer.consumed_tails:
            aws.s3().delete_object(Bucket=self.config.bucket, Key=key)
        self.writer.consumed_tails.clear()

    def _log_progress(self) -> None:
        now = time.monotonic()
        if now - self.last_log < PROGRESS_LOG_SECONDS:
            return
        self.last_log = now
        rows = self.checkpoint.rows - self.rows_at_start
        logger.info(
            "export progress",
            extra={
                "list_id": self.checkpoint.list_id,
                "rows": self.checkpoint.rows,
                "pages": self.pages_before + self.pages_this_invocation,
                "members_per_second": round(rows / max(now - self.started, 1e-6), 1),
                "retries": self.transport.retries - self.retries_at_start,
                "compressed_bytes": self.writer.compressed_bytes,
            },
        )

    def report(self, seconds: float) -> None:
        """Metrics for this invocation (flushed by the handler's decorator)."""
        rows = self.checkpoint.rows - self.rows_at_start
        retries = self.transport.retries - self.retries_at_start
        count("ExportMembers", rows)
        count("ExportPages", self.pages_this_invocation)
        count("ExportRetries", retries)
        count("ExportEpochRestarts", self.restarts)
        rate = rows / max(seconds, 1e-6)
        metrics.add_metric(name="ExportMembersPerSecond", unit=MetricUnit.CountPerSecond, value=rate)
        logger.info(
            "export invocation done",
            extra={
                "list_id": self.checkpoint.list_id,
                "rows_this_invocation": rows,
                "rows": self.checkpoint.rows,
                "pages_this_invocation": self.pages_this_invocation,
                "members_per_second": round(rate, 1),
                "retries": retries,
                "epoch_restarts": self.restarts,
                "seconds": round(seconds, 2),
            },
        )
