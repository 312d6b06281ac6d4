"""Paging a window of an audience while members change: every member that did not change is
read exactly once, whatever the timing. The audience here is an in-memory stand-in for
Mailchimp's members endpoint (filter, sort by last_changed, offset paging, total_items)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from chimpbridge.logic.export.layout import ExportedMember
from chimpbridge.logic.export.paging import FetchedPage, PageRequest, WindowPager

BEFORE = 1_000_000  # the run started here; changes stamp later times
PAGE = 100


@dataclass
class Member:
    id: str
    last_changed: int
    status: str = "subscribed"


@dataclass
class FakeAudience:
    """Mailchimp's GET /lists/{id}/members, in memory. ``on_request[n]`` runs just before the
    n-th request (1-based) is answered, to change members mid-export. ``since_exclusive`` and
    ``before_inclusive`` read the bounds the other way than the sandbox does."""

    members: list[Member]
    on_request: dict[int, Callable[[FakeAudience], None]] = field(default_factory=dict)
    since_exclusive: bool = False
    before_inclusive: bool = False
    requests: list[PageRequest] = field(default_factory=list)
    clock: int = BEFORE
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def change(self, member_id: str) -> None:
        """A change stamps the member with "now", after the run's window."""
        self.clock += 1
        next(member for member in self.members if member.id == member_id).last_changed = self.clock

    def page(self, request: PageRequest) -> FetchedPage:
        with self._lock:
            self.requests.append(request)
            hook = self.on_request.get(len(self.requests))
            if hook is not None:
                hook(self)
            order = {member.id: index for index, member in enumerate(self.members)}
            since = None if request.since is None else request.since + self.since_exclusive
            before = request.before + self.before_inclusive
            selected = [
                member
                for member in self.members
                if (since is None or member.last_changed >= since)
                and member.last_changed < before
                and (request.status is None or member.status == request.status)
            ]
            selected.sort(key=lambda member: (member.last_changed, order[member.id]))
            chunk = selected[request.offset : request.offset + request.count]
            return FetchedPage(
                len(selected), [ExportedMember(member.last_changed, member.status, member.id) for member in chunk]
            )


def audience(size: int, *, seed: int = 1, spread: int = 500_000) -> FakeAudience:
    rng = random.Random(seed)
    return FakeAudience([Member(f"m{index}", rng.randrange(spread)) for index in range(size)])


def read(
    source: FakeAudience,
    *,
    concurrency: int = 4,
    since: int | None = None,
    status: str | None = None,
    pages: int | None = None,
    first_round: int | None = None,
) -> tuple[list[str], WindowPager]:
    """Everything one pager yields (and the pager, for where it stopped)."""
    budget = {"left": pages}

    def keep_going() -> bool:
        if budget["left"] is None:
            return True
        budget["left"] -= 1
        return budget["left"] >= 0

    with ThreadPoolExecutor(concurrency) as executor:
        pager = WindowPager(
            source.page,
            executor,
            concurrency,
            status,
            since,
            BEFORE,
            keep_going,
            page_size=PAGE,
            first_round=first_round,
        )
        ids = [member.line for batch in pager for member in batch.members]
    return ids, pager


def test_an_unchanging_window_is_read_whole_in_last_changed_order() -> None:
    # Given 1,050 members nobody changes
    source = audience(1050)

    # When the window is paged 4 pages at a time
    ids, pager = read(source)

    # Then every member comes once, oldest change first
    expected = [member.id for member in sorted(source.members, key=lambda member: member.last_changed)]
    assert ids == expected
    assert pager.finished


def test_a_member_changing_after_it_was_read_makes_nobody_skipped() -> None:
    # Given 1,000 members read one page at a time, and a member of the first page changing
    # once 5 pages were read
    source = audience(1000)
    read_already = sorted(source.members, key=lambda member: member.last_changed)[10].id
    source.on_request[6] = lambda audience: audience.change(read_already)

    # When the window is paged
    ids, _ = read(source, concurrency=1)

    # Then each member is read exactly once (the changed one as it was when read). Plain offset
    # paging would skip the member that slid back across the page boundary.
    assert Counter(ids) == Counter(member.id for member in source.members)


def test_a_member_changing_before_it_is_read_is_left_to_the_next_run() -> None:
    # Given a member of a later page changing after 3 pages were read
    source = audience(1000)
    ahead = sorted(source.members, key=lambda member: member.last_changed)[650].id
    source.on_request[4] = lambda audience: audience.change(ahead)

    # When the window is paged
    ids, _ = read(source, concurrency=1)

    # Then everyone else is read exactly once; the changed member is not (its new last_changed
    # is after the window: the next incremental run reads it with its new values)
    assert Counter(ids) == Counter(member.id for member in source.members if member.id != ahead)


def test_many_changes_during_a_concurrent_read_never_skip_or_repeat_anyone() -> None:
    # Given 3,000 members and 60 of them changing at random moments of a 4-wide read
    source = audience(3000, seed=5)
    rng = random.Random(9)
    changing = rng.sample([member.id for member in source.members], 60)
    for index, member_id in enumerate(changing):
        source.on_request[2 + index // 2] = lambda audience, member_id=member_id: audience.change(member_id)

    # When the window is paged
    ids, _ = read(source, concurrency=4)

    # Then no member is read twice, and every member that never changed is read
    counts = Counter(ids)
    assert max(counts.values()) == 1
    assert {member.id for member in source.members} - set(changing) <= set(counts)


def test_members_sharing_one_second_across_pages_are_read_once_despite_a_change() -> None:
    # Given 450 members changed in the very same second (an import), between others
    source = audience(600, seed=3)
    for member in source.members[100:550]:
        member.last_changed = 250_000
    source.on_request[3] = lambda audience: audience.change("m20")

    # When the window is paged, one member changing meanwhile
    ids, _ = read(source, concurrency=2)

    # Then the others are all read exactly once
    assert Counter(ids) == Counter(member.id for member in source.members if member.id != "m20")


def test_a_read_stopped_by_its_budget_continues_from_where_it_stopped() -> None:
    # Given 1,000 members, and an invocation that may fetch 3 pages
    source = audience(1000)
    first, pager = read(source, pages=3)
    assert not pager.finished

    # When the next invocation starts from the first one's resume point
    rest, next_pager = read(source, since=pager.resume_since)

    # Then together they read every member exactly once
    assert Counter(first + rest) == Counter(member.id for member in source.members)
    assert next_pager.finished


@pytest.mark.parametrize("since_exclusive", [False, True], ids=["since-at-or-after", "since-after"])
def test_a_resumed_read_misses_no_one_whichever_way_mailchimp_reads_since(since_exclusive: bool) -> None:
    # Given 1,000 members, many sharing a second, and Mailchimp reading since_last_changed as
    # "at or after" or as "after" (its reference's wording)
    source = audience(1000, spread=400)
    source.since_exclusive = since_exclusive

    # When a read stops after 3 pages and the next one starts where it stopped
    first, pager = read(source, pages=3)
    rest, _ = read(source, since=pager.resume_since)

    # Then together they read every member exactly once
    assert Counter(first + rest) == Counter(member.id for member in source.members)


def test_members_changed_at_the_window_end_are_left_out_even_if_mailchimp_includes_them() -> None:
    # Given members changed exactly at the window's end, and Mailchimp reading before_last_changed
    # as "at or before"
    source = audience(300)
    for member in source.members[::10]:
        member.last_changed = BEFORE
    source.before_inclusive = True

    # When the window is read
    ids, _ = read(source)

    # Then they are not in it (the next run, starting there, reads them)
    assert sorted(ids) == sorted(member.id for member in source.members if member.last_changed < BEFORE)


def test_an_empty_window_is_finished_at_once() -> None:
    # Given an audience with nobody changed inside the window
    source = audience(50)

    # When a window after every change is read
    ids, pager = read(source, since=600_000)

    # Then nothing is read and the window is done
    assert ids == [] and pager.finished


@pytest.mark.parametrize("status", ["unsubscribed", None])
def test_the_status_is_asked_of_mailchimp_on_every_page(status: str | None) -> None:
    # Given members of two statuses
    source = audience(300)
    for member in source.members[::3]:
        member.status = "unsubscribed"

    # When a window is read for one status (or all)
    ids, _ = read(source, status=status)

    # Then each request named it, and the members read are exactly those
    assert {request.status for request in source.requests} == {status}
    assert sorted(ids) == sorted(member.id for member in source.members if status in (None, member.status))


def test_a_small_incremental_window_costs_one_request() -> None:
    # Given a window of 80 members (one page)
    source = audience(80)

    # When it is read asking for one page first
    ids, _ = read(source, concurrency=4, first_round=1)

    # Then one request was enough
    assert len(ids) == 80 and len(source.requests) == 1


def test_the_first_round_goes_out_before_the_window_size_is_known() -> None:
    # Given a window of 1,050 members (11 pages), answered only once the test lets them through
    source = audience(1050)
    in_flight: list[int] = []
    arrived = threading.Semaphore(0)
    answer = threading.Event()

    def held_back(request: PageRequest) -> FetchedPage:
        in_flight.append(request.offset)
        arrived.release()
        answer.wait(10)
        return source.page(request)

    with ThreadPoolExecutor(4) as executor:
        pager = WindowPager(held_back, executor, 4, None, None, BEFORE, lambda: True, page_size=PAGE)

        # When the pager is started, before anyone reads from it or any page is answered
        pager.start()
        assert all(arrived.acquire(timeout=10) for _ in range(4))
        asked_ahead = sorted(in_flight)
        answer.set()
        ids = [member.line for batch in pager for member in batch.members]

    # Then a page per connection went out at once, and the total the first answers gave led the
    # rest: every member once, no page asked twice
    assert asked_ahead == [0, 100, 200, 300]
    assert ids == [member.id for member in sorted(source.members, key=lambda member: member.last_changed)]
    assert sorted(request.offset for request in source.requests) == list(range(0, 1100, 100))


def test_a_window_smaller_than_the_first_round_is_read_in_that_round() -> None:
    # Given a window of 250 members (3 pages) and 8 connections
    source = audience(250)

    # When it is read
    ids, pager = read(source, concurrency=8)

    # Then one round was enough (nothing asked past it): the pages past the end came back empty
    assert pager.finished and all(request.offset < 8 * PAGE for request in source.requests)
    assert Counter(ids) == Counter(member.id for member in source.members)


def test_members_added_and_removed_while_the_first_round_is_out_leave_nobody_skipped_or_repeated() -> None:
    # Given 2,000 members, and while the first round is being answered, members joining the
    # audience (stamped now, after the window) and members of early pages changing (they leave it)
    source = audience(2000, seed=11)
    in_order = sorted(source.members, key=lambda member: member.last_changed)
    leaving = [in_order[5].id, in_order[150].id, in_order[1200].id]

    def join_and_leave(fake: FakeAudience) -> None:
        for index in range(30):
            fake.clock += 1
            fake.members.append(Member(f"new{index}", fake.clock))
        for member_id in leaving:
            fake.change(member_id)

    source.on_request[3] = join_and_leave

    # When the window is read 4 pages at a time
    ids, _ = read(source, concurrency=4)

    # Then nobody who was in the window and stayed is skipped, nobody is read twice, and the
    # newcomers are left to the next run
    counts = Counter(ids)
    stayed = {member.id for member in in_order} - set(leaving)
    assert max(counts.values()) == 1
    assert stayed <= set(counts) <= stayed | set(leaving)
    assert not any(member_id.startswith("new") for member_id in counts)


def test_answers_ask_for_the_pages_after_them_while_the_reader_is_busy_elsewhere() -> None:
    # Given a started pager over 1,050 members (11 pages, within what may be queued at once)
    # whose reader does not read yet (it is reading the run's state, say)
    source = audience(1050)
    with ThreadPoolExecutor(4) as executor:
        pager = WindowPager(source.page, executor, 4, None, None, BEFORE, lambda: True, page_size=PAGE).start()

        # When the first round is answered
        deadline = time.monotonic() + 10
        while len(source.requests) < 11 and time.monotonic() < deadline:
            time.sleep(0.01)
        asked_unread = len(source.requests)
        ids = [member.line for batch in pager for member in batch.members]

    # Then every page was asked for before the reader came, and reading asked for nothing more
    assert asked_unread == 11 == len(source.requests)
    assert Counter(ids) == Counter(member.id for member in source.members)
