"""One step of one audience's export run (the package docstring has the map). One step:

1. a finished run of this schedule tick (``run#`` record) -> nothing to do for this audience;
2. take (or renew) the stream's lock, else :class:`ExportBusy` (the state machine waits, retries);
3. continue the run's checkpoint, or start one: window ``[watermark, now - settle)`` (full runs
   start at the beginning), the CSV columns;
4. page through the window (:mod:`.paging`) into the gzip stream (:mod:`.writer`), both driven
   by :mod:`.session`, checkpointing at every part, until the window is done or the
   invocation's budget is spent; not done: park the tail, checkpoint, return;
5. done: a multipart stream uploads its last part and checkpoints phase ``completing``, then
   completes the upload; a stream that never left memory is put whole. Then the manifest, then
   one transaction commits watermark + run record and drops checkpoint and lock. Each phase is
   resumable: a retry after a death between two of these steps takes the next one (completing
   again is safe, see :func:`.writer.complete_upload`; a stream put whole is simply
   exported again).

The first step of an audience does not wait for 1-3 to ask Mailchimp for pages: a new run's
window is known from the clock (and the watermark), so its first round of pages and the merge
fields go out first (:meth:`ExportSession.start`), and DynamoDB and S3 are asked while they
are on the wire. A run to resume instead drops them unread.

The lock lease runs to the invocation's deadline plus the state machine's longest wait before
it calls again, plus a margin: it cannot lapse while the run's execution is alive, so a lock
taken over is one whose execution is gone (or is the same schedule tick's other execution,
which then continues the run).

Failures: a transient one (Mailchimp 429/5xx after retries, network, S3/DynamoDB throttling or
contention) keeps the checkpoint and raises :class:`ExportInterrupted`, so a retry resumes.
Anything else aborts the run (upload aborted, staging and any completed or put object removed,
checkpoint and lock dropped) and raises :class:`ExportFailed`; nothing partial stays visible.
``action: abort`` (the state machine's catch) does the same cleanup for a run that ran out of
retries. Only the lock's holder cleans up: two executions of one schedule tick share the run,
and the one that gave up must not destroy the one still exporting.
"""

from __future__ import annotations

import hashlib
import math
import time
from datetime import UTC, datetime
from typing import Any

import requests

from chimpbridge import clients, settings
from chimpbridge.dal import aws_errors
from chimpbridge.dal.export_objects import ExportObjects, S3ExportObjects
from chimpbridge.dal.export_state import ExportState, stream_key
from chimpbridge.dal.job_state import StateContention
from chimpbridge.deadline import remaining_invocation_seconds
from chimpbridge.errors import ExportBusy, ExportFailed, ExportInterrupted, UpstreamError
from chimpbridge.logic.export.layout import data_key, iso, layout_for, manifest_key, object_base_name
from chimpbridge.logic.export.session import ExportSession
from chimpbridge.logic.export.writer import CompletedObject, complete_upload, completed_object, object_of_run
from chimpbridge.models.export import (
    AudienceOutcome,
    Checkpoint,
    CsvColumn,
    ExportJob,
    ExportProgress,
    Manifest,
    WriterState,
)
from chimpbridge.observability import count, logger

LAMBDA_MAX_SECONDS = 900  # the longest a Lambda invocation can run
LEASE_MARGIN_SECONDS = 60  # Step Functions' own delays between a retry's wait and the call


def lock_lease_seconds(config: settings.ExportSettings) -> int:
    """How long a lock taken now must hold: to this invocation's deadline, then the longest the
    state machine waits before it calls again, then a margin."""
    remaining = remaining_invocation_seconds()
    invocation = LAMBDA_MAX_SECONDS if remaining is None else max(remaining, 0.0)
    return math.ceil(invocation) + config.max_retry_delay_seconds + LEASE_MARGIN_SECONDS


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, StateContention):
        return True
    if isinstance(error, UpstreamError):
        return error.transient
    return aws_errors.is_transient(error) or isinstance(error, requests.RequestException)


class AudienceExport:
    """One audience of the job: its run's next step (:meth:`step`), or its end (:meth:`abort`).
    ``objects``: where the run's objects go (the export bucket unless a test gives another)."""

    def __init__(self, job: ExportJob, list_id: str, objects: ExportObjects | None = None) -> None:
        assert job.tick is not None and job.owner is not None
        self.job = job
        self.list_id = list_id
        self.config = settings.load(settings.ExportSettings)
        self.objects = objects if objects is not None else S3ExportObjects(self.config.bucket)
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
        now = int(time.time())
        try:
            with ExportSession(self.client, self.config, self.objects, self.list_id, self.job.format) as session:
                if self.job.progress is None:
                    self._fetch_ahead(session, now)
                return self._locked_step(session, now)
        except (ExportBusy, ExportInterrupted, ExportFailed):
            raise
        except Exception as error:
            if _is_transient(error):  # before the lock was taken: nothing to keep or clean up
                raise ExportInterrupted(f"audience {self.list_id}: {error}") from error
            raise

    def _fetch_ahead(self, session: ExportSession, now: int) -> None:
        """The audience's first step in this execution is most likely a new run, whose window is
        known before the state is read: put its first pages on the wire now."""
        watermark = self.state.watermark() if self.job.mode == "incremental" else None
        since, before = self._window(now, watermark)
        session.start(self.job.statuses[0] if self.job.statuses else None, since, before)

    def _window(self, now: int, watermark: int | None) -> tuple[int | None, int]:
        """A new run's window: from the watermark (incremental) or the beginning, to now - settle."""
        since = watermark if self.job.mode == "incremental" else None
        before = now - self.config.settle_seconds
        if since is not None:
            before = max(before, since)  # two runs within the settle time: an empty window
        return since, before

    def _locked_step(self, session: ExportSession, now: int) -> AudienceOutcome | ExportProgress:
        if self.state.run_finished(self.run_id):
            logger.info("export already done for this tick", extra={"list_id": self.list_id, "run_id": self.run_id})
            count("ExportAlreadyDone")
            return AudienceOutcome(list_id=self.list_id, run_id=self.run_id, outcome="already-exported")
        self.state.acquire(self.owner, self.run_id, lock_lease_seconds(self.config))
        try:
            checkpoint = self.state.checkpoint()
            if checkpoint is not None and checkpoint.run_id != self.run_id:
                # Its lock lease ran out: that run is dead (a lease outlives any invocation).
                logger.warning(
                    "discarding the checkpoint of a run that died",
                    extra={"list_id": self.list_id, "stale_run_id": checkpoint.run_id},
                )
                self._clean_up(checkpoint)
                checkpoint = None
            return self._step(session, checkpoint, now)
        except ExportBusy:
            raise
        except Exception as error:
            if _is_transient(error):
                logger.warning("export interrupted; the checkpoint is kept", extra={"list_id": self.list_id})
                raise ExportInterrupted(f"audience {self.list_id}: {error}") from error
            logger.exception("export failed; aborting the run", extra={"list_id": self.list_id})
            self._give_up()
            count("ExportAborted")
            raise ExportFailed(f"audience {self.list_id}: {error}") from error

    def _step(
        self, session: ExportSession, checkpoint: Checkpoint | None, now: int
    ) -> AudienceOutcome | ExportProgress:
        started = time.monotonic()
        begun_now = checkpoint is None
        if checkpoint is None:
            checkpoint = self._begin(now)
        else:
            checkpoint.invocations += 1
            checkpoint.owner = self.owner
        if checkpoint.phase == "exporting":
            finished = session.run(self.state, checkpoint, begun_now=begun_now)
            session.report(time.monotonic() - started)
            if not finished:
                return ExportProgress(
                    list_id=self.list_id,
                    run_id=self.run_id,
                    rows=checkpoint.rows,
                    pages=checkpoint.pages,
                    invocations=checkpoint.invocations,
                )
            put_whole = session.seal()
            if put_whole is not None:
                self._finalized(checkpoint, put_whole)
        if checkpoint.phase == "completing":
            # Complete the sealed upload (or find it completed by an attempt that died before
            # it could checkpoint).
            completed = complete_upload(
                self.objects,
                checkpoint.key,
                checkpoint.writer,
                run_id=checkpoint.run_id,
                sha256=checkpoint.object_sha256,
            )
            self._finalized(checkpoint, completed)
        return self._publish(checkpoint)

    def _finalized(self, checkpoint: Checkpoint, completed: CompletedObject) -> None:
        """Remember the complete object (phase ``finalizing``). Not checkpointed: a retry after a
        death before the commit completes again (or exports a stream put whole again), which
        costs less than a write between the object and the commit every run."""
        checkpoint.phase = "finalizing"
        checkpoint.object_bytes = completed.bytes
        checkpoint.object_sha256 = completed.sha256
        checkpoint.object_version = completed.version_id
        checkpoint.finished_at = datetime.now(UTC).replace(microsecond=0)

    def _begin(self, now: int) -> Checkpoint:
        previous = self.state.watermark()
        since, before = self._window(now, previous)
        # CSV columns come with the first pages (ExportSession); JSON Lines has none.
        columns: list[CsvColumn] | None = None if self.job.format == "csv" else []
        base = object_base_name(self.job.mode, before, self.run_id)
        key = data_key(self.list_id, self.job.format, before, base)
        self.objects.prepare()  # now, while the first pages are out, rather than when the stream ends
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
            manifest_key=manifest_key(self.list_id, self.job.format, before, base),
            window_since=since,
            window_before=before,
            previous_watermark=previous,
            merge_fields=columns,
            resume_since=since,
            writer=WriterState(),
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

    def _publish(self, checkpoint: Checkpoint) -> AudienceOutcome:
        """Manifest last, then the transaction that makes the run count."""
        assert checkpoint.finished_at is not None and checkpoint.object_sha256 is not None
        columns = layout_for(checkpoint.format, checkpoint.merge_fields or []).columns
        manifest = Manifest.of(checkpoint, bucket=self.objects.bucket, columns=columns)
        written = self.objects.put(
            checkpoint.manifest_key, manifest.model_dump_json(indent=2).encode(), content_type="application/json"
        )
        try:
            self.state.commit(
                checkpoint, manifest_key=checkpoint.manifest_key, finished_at=int(checkpoint.finished_at.timestamp())
            )
        except (ExportBusy, StateContention) as error:
            self._withdraw(checkpoint, written.version_id, run_lost=isinstance(error, ExportBusy))
            raise
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

    def _withdraw(self, checkpoint: Checkpoint, manifest_version: str | None, *, run_lost: bool) -> None:
        """The commit was refused: the manifest must not stay visible for a run that did not count.
        Contention: the retry writes it again. Lost (another run took the lock, or committed):
        unless the run lives on in the same tick's other execution, nothing of it may stay."""
        lives_on = run_lost and self._continued_elsewhere()
        if manifest_version or not lives_on:
            self.objects.delete(checkpoint.manifest_key, manifest_version)
        if run_lost and not lives_on:
            logger.warning(
                "export withdrawn: the stream moved on under it",
                extra={"list_id": self.list_id, "run_id": self.run_id},
            )
            self._clean_up(checkpoint)
            self.state.release(self.owner)

    def _continued_elsewhere(self) -> bool:
        """Whether another execution of this schedule tick carries the run on (or finished it)."""
        if self.state.run_finished(self.run_id):
            return True
        holder = self.state.holder()
        return holder is not None and holder.run_id == self.run_id and holder.owner != self.owner

    # ------------------------------------------------------------ aborting
    def _holds_lock(self) -> bool:
        """Take (or renew) the lock, to clean up as its holder; False if another live run has it."""
        try:
            self.state.acquire(self.owner, self.run_id, lock_lease_seconds(self.config))
        except ExportBusy:
            return False
        return True

    def _give_up(self) -> None:
        """Remove what the run left, as the lock's holder only: another execution of the same
        tick may be exporting this very run."""
        if not self._holds_lock():
            logger.warning(
                "not cleaning up: another execution holds the stream",
                extra={"list_id": self.list_id, "run_id": self.run_id},
            )
            return
        checkpoint = self.state.checkpoint()
        if checkpoint is not None and checkpoint.run_id == self.run_id:
            self._clean_up(checkpoint)
        self.state.release(self.owner)

    def abort(self) -> AudienceOutcome:
        """Give up the run: nothing of it stays visible, the lock is free, the watermark stays."""
        self._give_up()
        count("ExportAborted")
        logger.warning(
            "export aborted",
            extra={"list_id": self.list_id, "run_id": self.run_id, "error": (self.job.error or {}).get("Error")},
        )
        return AudienceOutcome(list_id=self.list_id, run_id=self.run_id, outcome="aborted")

    def _clean_up(self, checkpoint: Checkpoint) -> None:
        if checkpoint.writer.upload_id is not None:
            self.objects.abort_upload(checkpoint.key, checkpoint.writer.upload_id)
        elif checkpoint.phase == "exporting":
            # A stream put whole may be there, put by an attempt that died before it could say so.
            head = object_of_run(self.objects, checkpoint.key, checkpoint.run_id)
            if head is not None:
                checkpoint.phase, checkpoint.object_version = "finalizing", head.version_id
        if checkpoint.writer.tail_key:
            self.objects.delete(checkpoint.writer.tail_key)
        if checkpoint.phase == "completing":
            # The upload may have been completed by an attempt that died before saying so.
            head = completed_object(self.objects, checkpoint.key, checkpoint.writer, checkpoint.run_id)
            if head is not None:
                checkpoint.phase, checkpoint.object_version = "finalizing", head.version_id
        if checkpoint.phase == "finalizing":
            # Complete but never published: remove the object (this version) and any manifest.
            self.objects.delete(checkpoint.key, checkpoint.object_version)
            self.objects.delete(checkpoint.manifest_key)
        self.state.delete_checkpoint(checkpoint.run_id)
