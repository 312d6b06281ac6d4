"""One step of an import run: apply the next rows of the file, checkpoint, return.

1. a finished run of this content (``run#``: audience + ETag) -> nothing to do;
2. take (or renew) the audience's import lock, else :class:`ImportBusy` (the state machine
   waits and calls again);
3. continue the run's checkpoint, or start one (the audience's merge fields, read once);
4. stream the file from the start, pass over the rows the checkpoint has, and apply the rest a
   chunk at a time with ``IMPORT_MAX_CONNECTIONS`` calls in flight; after each chunk its
   results part is written, then the checkpoint (next row, counts): what the checkpoint says
   is applied is reported, exactly once. Stop before the invocation's deadline (or after
   ``IMPORT_MAX_ROWS_PER_INVOCATION``) and return the progress;
5. every row applied: join the results, write the summary, publish the event, then one
   transaction records the run and drops checkpoint and lock.

A transient failure (Mailchimp 429/5xx after retries, network, S3/DynamoDB throttling) lets
the calls in flight finish, commits what completed (rows beyond the first unfinished one are
remembered in ``done_ahead``) and raises :class:`ImportInterrupted`; the state machine calls
again and the run resumes. A run killed without warning (the process dies) applies the rows
of its last chunk again when it resumes: the members end the same, and the report holds each
row once, with the outcome its second application saw. Anything else raises
:class:`ImportFailed`; the state machine's catch then calls with ``action: abort``, which
reports what was applied (summary ``aborted``, with the error) and frees the audience. An
aborted run is not recorded, so uploading the file again starts it afresh.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from typing import Any

import requests

from chimpbridge import clients, settings
from chimpbridge.dal import aws_errors, events, import_objects
from chimpbridge.dal.import_state import ImportState
from chimpbridge.dal.job_state import StateContention
from chimpbridge.deadline import remaining_invocation_seconds
from chimpbridge.errors import ImportBusy, ImportFailed, ImportInterrupted, MailchimpApiError, UpstreamError
from chimpbridge.logic.audience_import import report
from chimpbridge.logic.audience_import.columns import Columns
from chimpbridge.logic.audience_import.members import Planned, RowChecker, RowResult, apply
from chimpbridge.logic.audience_import.rows import Row, file_format, read_rows
from chimpbridge.models.audience_import import (
    ImportCheckpoint,
    ImportJob,
    ImportOutcome,
    ImportProgress,
    is_report,
    list_id_of,
)
from chimpbridge.observability import count, logger, mask_emails

LAMBDA_MAX_SECONDS = 900
LEASE_MARGIN_SECONDS = 60  # Step Functions' own delays between a retry's wait and the call


def run(job: ImportJob) -> ImportJob:
    """One step of the job; the result is the next step's input."""
    if job.done:
        return job
    if job.owner is None:
        job.owner = job.execution or uuid.uuid4().hex
    config = settings.load(settings.ImportSettings)
    why_not = _not_an_import(job, config)
    if why_not is not None:
        logger.info("object is not an import; nothing to do", extra={"key": job.object.key, "reason": why_not})
        count("ImportIgnored")
        job.result, job.done = ImportOutcome(outcome="ignored", reason=why_not), True
        return job
    importer = AudienceImport(config, job)
    if job.action == "abort":
        job.result, job.done, job.progress = importer.abort(), True, None
        return job
    step = importer.step()
    if isinstance(step, ImportOutcome):
        job.result, job.done, job.progress = step, True, None
    else:
        job.progress = step
    return job


def _not_an_import(job: ImportJob, config: settings.ImportSettings) -> str | None:
    if job.object.bucket != config.bucket:
        return "not the bundle's import bucket"
    if is_report(job.object.key):
        return "a report of an import"
    if list_id_of(job.object.key) is None:
        return "not under imports/<audience id>/"
    return None


def run_id_of(list_id: str, etag: str) -> str:
    """The same content (ETag) into the same audience is the same run, whatever its key, and
    whether the job came from S3's event or was written by hand."""
    return hashlib.sha256(f"{list_id}|{etag}".encode()).hexdigest()[:20]


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, StateContention):
        return True
    if isinstance(error, UpstreamError):
        return error.transient
    if aws_errors.is_aws_error(error):
        return aws_errors.is_transient(error)
    return isinstance(error, requests.RequestException | ConnectionError)


class AudienceImport:
    def __init__(self, config: settings.ImportSettings, job: ImportJob) -> None:
        assert job.owner is not None
        self.config = config
        self.job = job
        self.source = job.object
        self.list_id = str(list_id_of(job.object.key))
        self.owner = job.owner
        self.run_id = run_id_of(self.list_id, job.object.etag)
        self.state = ImportState(config.state_table, self.list_id)
        self._lists: Any = None

    @property
    def lists(self) -> Any:
        if self._lists is None:
            self._lists = clients.marketing(self.config.max_connections).lists
        return self._lists

    def _lease_seconds(self) -> int:
        remaining = remaining_invocation_seconds()
        invocation = LAMBDA_MAX_SECONDS if remaining is None else max(remaining, 0.0)
        return math.ceil(invocation) + self.config.max_retry_delay_seconds + LEASE_MARGIN_SECONDS

    # ------------------------------------------------------------ one step
    def step(self) -> ImportOutcome | ImportProgress:
        try:
            return self._step()
        except (ImportBusy, ImportInterrupted, ImportFailed):
            raise
        except Exception as error:
            if _is_transient(error):
                logger.warning("import interrupted; the checkpoint is kept", extra=self._about())
                count("ImportInterrupted")
                raise ImportInterrupted(f"import {self.run_id}: {type(error).__name__}") from error
            logger.exception("import failed", extra=self._about())
            raise ImportFailed(f"import {self.run_id}: {_describe(error)}") from error

    def _about(self) -> dict[str, Any]:
        return {"list_id": self.list_id, "run_id": self.run_id, "key": self.source.key}

    def _step(self) -> ImportOutcome | ImportProgress:
        finished = self.state.finished(self.run_id)
        if finished is not None:
            logger.info("this file was imported already", extra=self._about())
            count("ImportAlreadyDone")
            return ImportOutcome(
                run_id=self.run_id,
                list_id=self.list_id,
                outcome="already-imported",
                results_key=finished.results_key,
                summary_key=finished.summary_key,
            )
        self.state.acquire(self.owner, self.run_id, self._lease_seconds())
        checkpoint = self.state.checkpoint(self.run_id)
        if checkpoint is None:
            checkpoint = self._begin()
        else:
            checkpoint.invocations += 1
            checkpoint.owner = self.owner
        if checkpoint.phase == "importing":
            if not self._import(checkpoint):
                return ImportProgress(
                    run_id=self.run_id, rows=checkpoint.counts.rows, invocations=checkpoint.invocations
                )
            checkpoint.phase = "publishing"
            checkpoint.finished_at = datetime.now(UTC).replace(microsecond=0)
            self.state.save_checkpoint(checkpoint)
        return self._publish(checkpoint, "imported")

    def _new_checkpoint(self, merge_fields: dict[str, str]) -> ImportCheckpoint:
        return ImportCheckpoint(
            run_id=self.run_id,
            owner=self.owner,
            list_id=self.list_id,
            object=self.source,
            started_at=datetime.now(UTC).replace(microsecond=0),
            trust_consent=self.config.trust_consent,
            merge_fields=merge_fields,
            format=file_format(self.source.key),
        )

    def _begin(self) -> ImportCheckpoint:
        try:
            answer = self.lists.get_list_merge_fields(
                self.list_id, count=1000, fields=["merge_fields.tag", "merge_fields.name"]
            )
        except MailchimpApiError as error:
            if error.status == 404:
                raise ImportFailed(f"audience {self.list_id} was not found") from None
            raise
        merge_fields = {str(item["tag"]): str(item.get("name") or "") for item in answer.get("merge_fields") or []}
        checkpoint = self._new_checkpoint(merge_fields)
        self.state.save_checkpoint(checkpoint)
        logger.info("import started", extra={**self._about(), "format": checkpoint.format})
        count("ImportStarted")
        return checkpoint

    # ------------------------------------------------------------ rows
    def _import(self, checkpoint: ImportCheckpoint) -> bool:
        """Apply rows until the file ends (True) or this invocation should stop (False)."""
        columns = Columns(self.config.field_map, checkpoint.merge_fields)
        checker = RowChecker(self.list_id, columns, self.config.field_map, trust_consent=checkpoint.trust_consent)
        done_ahead = set(checkpoint.done_ahead)
        taken = 0
        stream = import_objects.open_object(self.source)
        with stream, ThreadPoolExecutor(self.config.max_connections, thread_name_prefix="import") as pool:
            header, rows = read_rows(stream, checkpoint.format or "csv")
            if header is not None and not any(columns(column).meaning == "email" for column in header):
                raise ImportFailed("the file has no Email Address (or email) column")
            chunk: list[Row] = []
            for row in rows:
                if row.number < checkpoint.next_row or row.number in done_ahead:
                    continue
                if len(chunk) == self.config.chunk_rows:
                    # A full chunk goes once a row after it is seen: stopping then always leaves
                    # rows for the next invocation, never an invocation that finds none.
                    started = time.monotonic()
                    self._apply_chunk(pool, checker, checkpoint, chunk)
                    taken += len(chunk)
                    chunk = []
                    if self._should_stop(taken, time.monotonic() - started):
                        return False
                chunk.append(row)
            if chunk:
                self._apply_chunk(pool, checker, checkpoint, chunk)
        return True

    def _should_stop(self, taken: int, last_chunk_seconds: float) -> bool:
        """After ``taken`` rows: whether the next chunk might not end (with its checkpoint)
        before the deadline, judged by how long the last one took (Mailchimp's pace changes)."""
        limit = self.config.max_rows_per_invocation
        if limit and taken >= limit:
            return True
        remaining = remaining_invocation_seconds()
        needed = self.config.stop_before_deadline_seconds + 2 * last_chunk_seconds
        return remaining is not None and remaining < needed

    def _apply_chunk(
        self, pool: ThreadPoolExecutor, checker: RowChecker, checkpoint: ImportCheckpoint, chunk: list[Row]
    ) -> None:
        results: dict[int, RowResult] = {}
        in_flight: dict[Future[RowResult], Planned] = {}
        for row in chunk:
            if row.problem is not None:
                results[row.number] = RowResult(row.number, "", "skipped", "invalid-row", row.problem)
                continue
            planned = checker.plan(row.number, row.values)
            if isinstance(planned, RowResult):
                results[row.number] = planned
            else:
                in_flight[pool.submit(apply, self.lists, self.list_id, planned)] = planned
        failure: BaseException | None = None
        for future in as_completed(in_flight):
            if future.cancelled():
                continue
            error = future.exception()
            if error is None:
                result = future.result()
                results[result.number] = result
            elif failure is None:
                failure = error
                for pending in in_flight:
                    pending.cancel()  # not yet sent: left for the resumed run
        self._commit(checkpoint, chunk, results, interrupted=failure is not None)
        if failure is not None:
            raise failure

    def _commit(
        self, checkpoint: ImportCheckpoint, chunk: list[Row], results: dict[int, RowResult], *, interrupted: bool
    ) -> None:
        """The chunk's results part, then the checkpoint that counts it."""
        if results:
            data = report.part(results.values(), full_emails=self.config.emails_in_report == "full")
            import_objects.put_part(self.source.bucket, self.run_id, checkpoint.parts + 1, data)
            checkpoint.parts += 1
            for result in results.values():
                checkpoint.counts.add(result.outcome, result.reason)
        unfinished = [row.number for row in chunk if row.number not in results]
        next_row = min(unfinished) if unfinished else chunk[-1].number + 1
        ahead = {number for number in checkpoint.done_ahead if number >= next_row}
        ahead.update(number for number in results if number >= next_row)
        checkpoint.next_row, checkpoint.done_ahead = next_row, sorted(ahead)
        if interrupted:
            checkpoint.interruptions += 1
        self.state.save_checkpoint(checkpoint)
        for outcome in ("created", "updated", "unchanged", "skipped"):
            applied = sum(1 for result in results.values() if result.outcome == outcome)
            if applied:
                count(f"ImportRows{outcome.capitalize()}", applied)

    # ------------------------------------------------------------ the end
    def _publish(self, checkpoint: ImportCheckpoint, outcome: str, error: str | None = None) -> ImportOutcome:
        """Results, summary, event, then the transaction that makes the run count. Each is
        written again by a retry; the event is published at least once (its run_id dedupes)."""
        bucket, key = self.source.bucket, self.source.key
        results_key, summary_key = report.results_key(key), report.summary_key(key)
        import_objects.concatenate(bucket, report.header(), self.run_id, checkpoint.parts, results_key)
        summary = report.summary(checkpoint, emails=self.config.emails_in_report, outcome=outcome, error=error)
        import_objects.put_json(bucket, summary_key, summary.model_dump_json(indent=2))
        events.publish(
            events.BusEvent(
                bus_name=self.config.event_bus_name,
                source=report.EVENT_SOURCE,
                detail_type=report.FINISHED,
                detail=report.event_detail(summary),
            )
        )
        assert checkpoint.finished_at is not None
        if outcome == "imported":
            self.state.commit(
                checkpoint,
                summary_key=summary_key,
                results_key=results_key,
                finished_at=int(checkpoint.finished_at.timestamp()),
            )
            count("ImportCompleted")
        else:
            self.state.delete_checkpoint(self.run_id)
            self.state.release(self.owner)
            count("ImportAborted")
        if not import_objects.delete_parts(bucket, self.run_id, checkpoint.parts):
            logger.warning("staged report parts left behind (they expire)", extra=self._about())
        counts = checkpoint.counts
        logger.info(
            f"import {outcome}",
            extra={
                **self._about(),
                **{f"rows_{name}": value for name, value in counts.model_dump(exclude={"skipped_by_reason"}).items()},
                "results_key": results_key,
            },
        )
        return ImportOutcome(
            run_id=self.run_id,
            list_id=self.list_id,
            outcome="imported" if outcome == "imported" else "aborted",
            counts=counts,
            results_key=results_key,
            summary_key=summary_key,
        )

    def abort(self) -> ImportOutcome:
        """The run stops for good: report what was applied, free the audience. Only the lock's
        holder (or whoever may take it) does this: another execution may be importing. A run
        that finished meanwhile (a failure after its commit) stays as it finished."""
        if self.state.finished(self.run_id) is not None:
            return ImportOutcome(run_id=self.run_id, list_id=self.list_id, outcome="already-imported")
        try:
            self.state.acquire(self.owner, self.run_id, self._lease_seconds())
        except ImportBusy:
            logger.warning("not aborting: another execution holds the audience", extra=self._about())
            return ImportOutcome(run_id=self.run_id, list_id=self.list_id, outcome="aborted", reason="busy")
        checkpoint = self.state.checkpoint(self.run_id) or self._new_checkpoint({})
        checkpoint.finished_at = datetime.now(UTC).replace(microsecond=0)
        checkpoint.owner = self.owner
        return self._publish(checkpoint, "aborted", _failure_of(self.job.error))


def _describe(error: BaseException) -> str:
    if isinstance(error, MailchimpApiError):
        return f"Mailchimp answered {error.status} {error.title or ''}".strip()
    return type(error).__name__


def _failure_of(error: dict[str, Any] | None) -> str:
    """What the state machine's catch says, in one line, without addresses."""
    if not error:
        return "aborted"
    name = str(error.get("Error") or "error")
    cause = error.get("Cause")
    message = ""
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
            message = str(parsed.get("errorMessage") or "") if isinstance(parsed, dict) else cause
        except ValueError:
            message = cause
    return mask_emails(f"{name}: {message}" if message else name)[:500]
