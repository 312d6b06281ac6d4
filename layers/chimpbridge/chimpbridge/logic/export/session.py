"""The exporting part of one invocation: member pages in (many at once, through the pooled SDK
client), gzip parts out, a checkpoint after every part, and a clean stop when the invocation's
budget (time left, or pages) is spent.

The session opens before the run's state is read: a new run's window is known from the clock
(and, incremental, the watermark), so :meth:`ExportSession.start` puts its first round of pages
on the wire while DynamoDB and S3 are still being asked whether and where to export. If the
state says otherwise (a run to resume, done, busy), those pages are dropped unread.

The page workers turn members into lines as soon as a page arrives, so what waits for its turn
to be written is text, not parsed JSON. The CSV columns (the audience's merge fields) are
fetched alongside the first pages rather than before them: the workers wait for them only to
encode, which costs nothing while the first pages are still on the wire.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from chimpbridge import settings
from chimpbridge.deadline import remaining_invocation_seconds
from chimpbridge.logic.export import paging
from chimpbridge.logic.export.layout import ExportedMember, Layout, iso, layout_for, tail_key
from chimpbridge.logic.export.paging import FetchedPage, PageRequest, PageSource, WindowPager
from chimpbridge.logic.export.writer import MIB, CompletedObject, MultipartGzipWriter
from chimpbridge.models.export import Checkpoint, CsvColumn, ExportFormat
from chimpbridge.observability import MetricUnit, count, logger, metrics

if TYPE_CHECKING:
    from chimpbridge.dal.export_objects import ExportObjects
    from chimpbridge.dal.export_state import ExportState

PROGRESS_LOG_SECONDS = 10.0
WORKERS_PER_CONNECTION = 2
SWITCH_INTERVAL_SECONDS = 0.001


@contextmanager
def _responsive_threads() -> Iterator[None]:
    """A shorter GIL switch interval while pages are fetched. A page's body arrives in many
    socket reads, each of which gives up the GIL; with Python's default interval a worker whose
    bytes are there can wait that long for the GIL at every read while another worker encodes,
    holding its connection idle. The shorter interval keeps connections busy when the CPU is
    contended, as it is on a Lambda with a fraction of a vCPU (docs/benchmarks.md, "Audience
    export", the earlier full-size measurements)."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


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


def merge_fields(client: Any, list_id: str) -> list[CsvColumn]:
    """The audience's merge fields in display order: the CSV's columns after the address."""
    body = client.lists.get_list_merge_fields(list_id, count=1000)
    fields = sorted(body.get("merge_fields") or [], key=lambda field: field.get("display_order", 0))
    return [CsvColumn(tag=field["tag"], name=field["name"], type=field.get("type", "text")) for field in fields]


def page_source(
    client: Any, list_id: str, projection: dict[str, list[str]], encode: Callable[[dict[str, Any]], ExportedMember]
) -> PageSource:
    """Pages of members through the official SDK, encoded in the worker thread."""
    lists = client.lists

    def fetch(request: PageRequest) -> FetchedPage:
        params: dict[str, Any] = {
            "count": request.count,
            "offset": request.offset,
            "sort_field": "last_changed",
            "sort_dir": "ASC",
            "before_last_changed": iso(request.before),
            **projection,
        }
        if request.since is not None:
            params["since_last_changed"] = iso(request.since)
        if request.status is not None:
            params["status"] = request.status
        body = lists.get_list_members_info(list_id, **params)
        members = body.get("members") or []
        return FetchedPage(int(body.get("total_items") or 0), [encode(member) for member in members])

    return fetch


class ExportSession:
    """Use as a context manager: it owns the page workers. :meth:`start` (optional) fetches ahead
    for a new run; :meth:`run` exports for the run's checkpoint."""

    def __init__(
        self, client: Any, config: settings.ExportSettings, objects: ExportObjects, list_id: str, fmt: ExportFormat
    ) -> None:
        self.client = client
        self.config = config
        self.objects = objects
        self.list_id = list_id
        self.format = fmt
        self.transport = client.api_client.transport
        self.retries_at_start = self.transport.retries
        self.budget = Budget(config)
        self.pages_this_invocation = 0
        self.restarts = 0
        self.discarded = 0  # pages fetched, then dropped (an epoch restart; a first round fetched ahead in vain)
        self.started = time.monotonic()
        self.last_log = self.started
        self._stack = ExitStack()
        self._executor: ThreadPoolExecutor | None = None
        self._ahead: WindowPager | None = None  # the first round of a new run, from start()
        self._pager: WindowPager | None = None
        self._columns: Future[list[CsvColumn]] | None = None
        self._layout: Layout | None = None
        self._layout_lock = threading.Lock()

    def __enter__(self) -> ExportSession:
        self._stack.enter_context(_responsive_threads())
        # Twice as many workers as connections: a worker parsing and encoding the page it got
        # has already given its connection back, and another worker's request is using it.
        # The connection pool (pool_block) is what caps connections at EXPORT_CONCURRENCY.
        workers = WORKERS_PER_CONNECTION * self.config.concurrency
        self._executor = self._stack.enter_context(ThreadPoolExecutor(workers, thread_name_prefix="export-page"))
        return self

    def __exit__(self, *exc_info: object) -> None:
        # A pager left by an error stops asking for pages before the workers are shut down.
        if self._pager is not None:
            self._pager.close()
        self._drop_ahead()
        self._stack.close()

    @property
    def executor(self) -> ThreadPoolExecutor:
        assert self._executor is not None, "use ExportSession as a context manager"
        return self._executor

    # ------------------------------------------------------------ layout
    def layout(self) -> Layout:
        """The format's layout; for CSV it waits for the merge fields (fetched with the first pages)."""
        with self._layout_lock:
            if self._layout is None:
                columns: list[CsvColumn] = []
                if self.format == "csv":
                    assert self._columns is not None
                    columns = self._columns.result()
                self._layout = layout_for(self.format, columns)
            return self._layout

    def _encode(self, member: dict[str, Any]) -> ExportedMember:
        return self.layout().encode(member)

    def _ensure_header(self) -> None:
        if self.writer.state.raw_bytes == 0:
            layout = self.layout()
            if self.format == "csv":
                assert self._columns is not None
                self.checkpoint.merge_fields = self._columns.result()
            if layout.header:
                self.writer.write(layout.header.encode())

    def _use_columns_of(self, checkpoint: Checkpoint) -> None:
        """Encode with the run's columns: those it started with, or (none yet) freshly fetched."""
        if checkpoint.merge_fields is not None:
            known: Future[list[CsvColumn]] = Future()
            known.set_result(checkpoint.merge_fields)
            self._columns, self._layout = known, None
        elif self._columns is None:
            self._fetch_columns()

    def _fetch_columns(self) -> None:
        self._columns = self.executor.submit(merge_fields, self.client, self.list_id)

    # ------------------------------------------------------------ paging
    def _new_pager(self, status: str | None, since: int | None, before: int) -> WindowPager:
        projection = layout_for(self.format, []).projection
        # The merge fields take one connection of the first round when they travel with it.
        sharing = self._columns is not None and not self._columns.done()
        return WindowPager(
            page_source(self.client, self.list_id, projection, self._encode),
            self.executor,
            self.config.concurrency,
            status,
            since,
            before,
            self.budget.keep_going,
            page_size=paging.PAGE_SIZE,
            first_round=max(1, self.config.concurrency - sharing),
        )

    def start(self, status: str | None, since: int | None, before: int) -> None:
        """Fetch ahead for a new run of window ``[since, before)``, starting with ``status``: its
        first round of pages, and the merge fields for CSV."""
        if self.format == "csv":
            self._fetch_columns()
        self._ahead = self._new_pager(status, since, before).start()

    def _drop_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead.close()
            self._ahead = None
            self.discarded += self.budget.pages
            self.budget.pages = 0  # nothing of it was used

    def _take_ahead(self, status: str | None, since: int | None, before: int) -> WindowPager | None:
        """The pager :meth:`start` began, if it reads this very window (else it is dropped)."""
        ahead = self._ahead
        if ahead is not None and (ahead.status, ahead.since, ahead.before) == (status, since, before):
            self._ahead = None
            return ahead
        self._drop_ahead()
        return None

    # ------------------------------------------------------------ the run
    def run(self, state: ExportState, checkpoint: Checkpoint, *, begun_now: bool) -> bool:
        """Export until the window is done (True) or the budget is spent (False). ``begun_now``:
        the run started in this invocation, so what :meth:`start` fetched may be its first round."""
        self.state = state
        self.checkpoint = checkpoint
        self.writer = MultipartGzipWriter.open(
            self.objects,
            checkpoint.key,
            checkpoint.writer,
            self.config.part_size_mib * MIB,
            run_id=checkpoint.run_id,
            metadata={"list-id": checkpoint.list_id, "format": checkpoint.format},
        )
        self.retries_before = checkpoint.retries
        self.pages_before = checkpoint.pages
        self.rows_at_start = checkpoint.rows
        self.restarts_before = checkpoint.restarts
        segments: list[str | None] = list(checkpoint.statuses) if checkpoint.statuses else [None]
        first = segments[checkpoint.segment] if checkpoint.segment < len(segments) else None
        ahead = self._take_ahead(first, checkpoint.resume_since, checkpoint.window_before) if begun_now else None
        if ahead is None:
            self._drop_ahead()  # not this run's first round (a run to resume, or the window moved)
            self._use_columns_of(checkpoint)
        for index in range(checkpoint.segment, len(segments)):
            since = checkpoint.resume_since if index == checkpoint.segment else checkpoint.window_since
            pager = ahead or self._new_pager(segments[index], since, checkpoint.window_before)
            ahead = None
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
            self.discarded += pager.stats.discarded
            self._pager = None
            if not pager.finished:
                self._ensure_header()
                self.writer.suspend(tail_key(checkpoint.run_id, checkpoint.invocations))
                self._save(index, pager.resume_since)
                return False
            checkpoint.segment, checkpoint.resume_since = index + 1, checkpoint.window_since
        self._ensure_header()
        return True

    def seal(self) -> CompletedObject | None:
        """End the stream. Multipart: upload its last part and checkpoint phase ``completing``:
        from here on a retry completes the upload (``AudienceExport``), it never writes the
        stream again; None. Put whole: the object (the checkpoint is the caller's to save)."""
        completed = self.writer.seal()
        checkpoint = self.checkpoint
        if completed is not None:
            self._note(checkpoint.segment, checkpoint.resume_since)
            return completed
        checkpoint.phase = "completing"
        checkpoint.object_sha256 = self.writer.sha256  # None if the stream crossed invocations
        self._save(checkpoint.segment, checkpoint.resume_since)
        return None

    def _write(self, members: list[ExportedMember]) -> None:
        self._ensure_header()
        if not members:
            return
        counts = self.checkpoint.counts
        for member in members:
            counts[member.status] = counts.get(member.status, 0) + 1
        self.checkpoint.rows += len(members)
        self.writer.write("".join(member.line for member in members).encode())

    def _note(self, segment: int, resume_since: int | None) -> None:
        """Bring the checkpoint up to date with the stream and the counters."""
        checkpoint = self.checkpoint
        checkpoint.segment = segment
        checkpoint.resume_since = resume_since
        checkpoint.pages = self.pages_before + self.pages_this_invocation
        checkpoint.retries = self.retries_before + (self.transport.retries - self.retries_at_start)
        current = self._pager.stats.restarts if self._pager is not None else 0
        checkpoint.restarts = self.restarts_before + self.restarts + current
        checkpoint.writer = self.writer.state.model_copy(deep=True)

    def _save(self, segment: int, resume_since: int | None) -> None:
        self._note(segment, resume_since)
        self.state.save_checkpoint(self.checkpoint)
        for key in self.writer.consumed_tails:
            self.objects.delete(key)
        self.writer.consumed_tails.clear()

    # ------------------------------------------------------------ progress
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
                "epoch_restarts": self.restarts + (self._pager.stats.restarts if self._pager else 0),
                "pages_discarded": self.discarded + (self._pager.stats.discarded if self._pager else 0),
                "compressed_bytes": self.writer.compressed_bytes,
            },
        )

    def report(self, seconds: float) -> None:
        """Metrics for this invocation (flushed by the handler's decorator)."""
        rows = self.checkpoint.rows - self.rows_at_start
        retries = self.transport.retries - self.retries_at_start
        rate = rows / max(seconds, 1e-6)
        count("ExportMembers", rows)
        count("ExportPages", self.pages_this_invocation)
        count("ExportRetries", retries)
        count("ExportEpochRestarts", self.restarts)
        count("ExportPagesDiscarded", self.discarded)
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
                "pages_discarded": self.discarded,
                "seconds": round(seconds, 2),
            },
        )
