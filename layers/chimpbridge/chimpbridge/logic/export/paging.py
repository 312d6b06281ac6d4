"""Reading one window of an audience, many pages at once, with every member exactly once.

A window is ``since <= last_changed < before`` (one status, or all), sorted by
``last_changed`` ascending and read with ``offset`` paging, ``count=1000``, several pages in
flight. Offset paging is only exact while the set it pages over stays the same, so:

* ``before`` is in the past when the run starts. Nothing can *enter* the window during the
  run: a change stamps ``last_changed`` with Mailchimp's "now", which is later than ``before``.
* A member that changes during the run *leaves* the window (its new ``last_changed`` is past
  ``before``; the next incremental run picks it up with its new values). When one that was
  already read leaves, every later member shifts left by one, and the member at the next
  offset slides into the part already read: plain offset paging silently skips it. With pages
  in flight at once, a page served after the shift can also overlap a neighbour served before
  it: a duplicate. The set can only shrink, so its size (``total_items``, on every page) tells
  whether it changed: pages whose total equals the first page's total are slices of one and
  the same set.
* Pages are committed in offset order. The first page whose total differs starts a new
  *epoch*: that page and everything fetched after it are discarded, and paging restarts at
  offset 0 with ``since`` = the commit boundary (below). In-flight requests of the old epoch are
  dropped as they land. A change during the run costs at most one round of pages.
* The commit boundary: committed output always ends at a ``last_changed`` second boundary. The
  trailing members that share the last page's final ``last_changed`` are held back until the
  next page shows a later second. Then "everything before ``resume_since`` is written" holds
  exactly, and paging can restart there with no skip and no duplicate, whatever the order of
  members within one second. The same boundary is what a checkpoint stores, so a resumed run
  is simply a new epoch.
* Mailchimp's bounds are not trusted to be inclusive or exclusive: its reference says
  ``since_last_changed`` means "changed after", and a restart at ``resume_since`` needs the
  members of that very second. So requests ask for ``since_last_changed`` one second early
  and the pager drops what falls outside ``since <= last_changed < before`` itself. The extra
  second is part of the paged set (offsets and totals count it); it is dropped only once a page
  is committed, after the checks above.

The size of the window is not known before the first answer, and waiting for it would cost a
whole round trip. So a round of pages goes out at once (:meth:`WindowPager.start`, called as
soon as the window is known, even before the caller is ready to take pages): pages past the end
come back empty, at no cost in time; the first ``total_items`` answered tells how many follow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field

from chimpbridge.logic.export.layout import ExportedMember

PAGE_SIZE = 1000  # Mailchimp's maximum


@dataclass(frozen=True)
class PageRequest:
    """One page as Mailchimp is asked for it: ``since_last_changed`` = ``since`` (a second before
    the window starts) and ``before_last_changed`` = ``before``."""

    status: str | None
    since: int | None
    before: int
    offset: int
    count: int


@dataclass(frozen=True)
class FetchedPage:
    total: int
    members: list[ExportedMember]


PageSource = Callable[[PageRequest], FetchedPage]


@dataclass(frozen=True)
class Batch:
    """Members to write, in order. After them, every member of the window with
    ``last_changed < resume_since`` has been yielded; ``resume_since`` is None at the end."""

    members: list[ExportedMember]
    resume_since: int | None


@dataclass
class PagerStats:
    pages: int = 0  # requests answered
    discarded: int = 0  # answered but dropped by an epoch restart
    restarts: int = 0


def _tie_start(members: list[ExportedMember]) -> int:
    """Index where the trailing run of equal ``last_changed`` begins."""
    last = members[-1].last_changed
    index = len(members) - 1
    while index > 0 and members[index - 1].last_changed == last:
        index -= 1
    return index


@dataclass
class _Epoch:
    """Paging state over one version of the window's member set."""

    number: int
    since: int | None
    ready: dict[int, FetchedPage] = field(default_factory=dict)
    next_offset: int = 0
    commit_offset: int = 0
    first_total: int | None = None  # the set's size, from the epoch's first page
    known_total: int | None = None  # the largest total seen (for scheduling only)
    held: list[ExportedMember] = field(default_factory=list)


@dataclass
class WindowPager:
    """Iterate to get :class:`Batch` es. ``keep_going()`` is asked before each new page; once it
    says no, pages in flight are still committed, then iteration ends with ``finished`` False
    and ``resume_since`` marking where to continue."""

    source: PageSource
    executor: Executor
    concurrency: int
    status: str | None
    since: int | None
    before: int
    keep_going: Callable[[], bool]
    page_size: int = PAGE_SIZE
    # Pages asked for before the first answer tells how many there are (default: one per
    # connection; one less when another request shares the first round).
    first_round: int | None = None
    stats: PagerStats = field(default_factory=PagerStats)
    finished: bool = False

    def __post_init__(self) -> None:
        self.resume_since = self.since
        self._in_flight: dict[Future[FetchedPage], tuple[int, int]] = {}  # future -> (epoch, offset)
        self._stopping = False
        self._epoch: _Epoch | None = None
        # Each answer schedules the pages after it from the worker thread it lands in, so the
        # connections stay busy while the caller is busy elsewhere (reading the run's state as
        # the first round is out, uploading a part). The lock guards what both sides touch;
        # reentrant, as a future that is done already runs its callback in the submitting thread.
        self._lock = threading.RLock()

    def start(self) -> WindowPager:
        """Put the first round of pages on the wire (iterating starts it too)."""
        self._first_epoch()
        return self

    def _first_epoch(self) -> _Epoch:
        with self._lock:
            if self._epoch is None:
                self._epoch = _Epoch(0, self.since)
                self._schedule()
            return self._epoch

    def close(self) -> None:
        """Ask for nothing more and drop what is still in flight, unread. Requests already on the
        wire finish in their workers (the executor's owner waits for them at its shutdown, so no
        thread outlives the invocation): the caller need not wait for pages past the end."""
        with self._lock:
            self._stopping = True
            for future in list(self._in_flight):
                future.cancel()
            self._in_flight.clear()

    def __iter__(self) -> Iterator[Batch]:
        try:
            yield from self._batches()
        finally:
            self.close()

    def _batches(self) -> Iterator[Batch]:
        epoch = self._first_epoch()
        while True:
            with self._lock:
                self._schedule()
                if not self._in_flight:
                    return  # stopped early: resume_since says where to continue
            self._collect(epoch)
            while epoch.commit_offset in epoch.ready:
                page = epoch.ready.pop(epoch.commit_offset)
                if epoch.first_total is None:
                    epoch.first_total = page.total
                is_last = epoch.commit_offset + self.page_size >= epoch.first_total
                if page.total != epoch.first_total or (not is_last and len(page.members) < self.page_size):
                    # The set changed under us: restart from the commit boundary.
                    self.stats.restarts += 1
                    self.stats.discarded += 1 + len(epoch.ready)
                    with self._lock:
                        epoch = self._epoch = _Epoch(epoch.number + 1, self.resume_since)
                    break
                members = epoch.held + self._inside(page.members, epoch.since)
                epoch.commit_offset += self.page_size
                if is_last:
                    self.finished = True
                    self.resume_since = None
                    yield Batch(members, None)
                    return
                if members:
                    split = _tie_start(members)
                    epoch.held = members[split:]
                    if split:
                        self.resume_since = epoch.held[0].last_changed
                        yield Batch(members[:split], self.resume_since)

    def _inside(self, members: list[ExportedMember], since: int | None) -> list[ExportedMember]:
        """The page's members inside the window (a page is in ``last_changed`` order, so only
        its ends can be outside)."""
        if not members:
            return members
        if (since is None or members[0].last_changed >= since) and members[-1].last_changed < self.before:
            return members
        return [
            member
            for member in members
            if (since is None or member.last_changed >= since) and member.last_changed < self.before
        ]

    def _schedule(self) -> None:
        """Ask for more pages of the current epoch (with the lock held). Enough requests queued to
        keep every connection busy while pages wait to be committed in order; bounded, so memory
        stays flat however large the audience."""
        epoch = self._epoch
        assert epoch is not None
        while not self._stopping and len(self._in_flight) + len(epoch.ready) < 3 * self.concurrency:
            if epoch.known_total is not None:
                limit = epoch.known_total
            else:
                limit = (self.first_round or self.concurrency) * self.page_size
            if epoch.next_offset >= limit:
                return
            if not self.keep_going():
                self._stopping = True
                return
            offset = epoch.next_offset
            epoch.next_offset += self.page_size
            since = None if epoch.since is None else epoch.since - 1  # see the module docstring
            future = self.executor.submit(
                self.source, PageRequest(self.status, since, self.before, offset, self.page_size)
            )
            self._in_flight[future] = (epoch.number, offset)
            future.add_done_callback(self._landed)

    def _landed(self, future: Future[FetchedPage]) -> None:
        """In the worker thread: an answer of the current epoch tells its size; ask for what follows."""
        if future.cancelled() or future.exception() is not None:
            return  # the iterating side raises it
        with self._lock:
            epoch = self._epoch
            if epoch is None or self._in_flight.get(future, (-1, 0))[0] != epoch.number:
                return
            _remember_total(epoch, future.result().total)
            self._schedule()

    def _collect(self, epoch: _Epoch) -> None:
        """Wait for at least one answer; keep those of the current epoch."""
        with self._lock:
            pending = list(self._in_flight)
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        with self._lock:
            for future in done:
                page_epoch, offset = self._in_flight.pop(future)
                page = future.result()
                self.stats.pages += 1
                if page_epoch != epoch.number:
                    self.stats.discarded += 1
                    continue
                epoch.ready[offset] = page
                _remember_total(epoch, page.total)


def _remember_total(epoch: _Epoch, total: int) -> None:
    """The largest set size seen: how far to ask (for scheduling only)."""
    epoch.known_total = total if epoch.known_total is None else max(epoch.known_total, total)
