"""An export that spans invocations, stops, fails or meets another run: it resumes from its
checkpoint, or leaves nothing visible behind; two runs never export one stream at once."""

from __future__ import annotations

import gzip
import hashlib
from collections import Counter

import pytest

from chimpbridge.errors import ExportBusy, ExportFailed, ExportInterrupted
from tests.support.clock import VirtualClock
from tests.support.export import AUDIENCE_SIZE, EMAIL_AND_STATUS, ExportWorld, job, sandbox_members


def started(world: ExportWorld, export_job: dict[str, object], pages: int = 3) -> dict[str, object]:
    """Run the first invocation of ``export_job`` with a budget of ``pages`` pages."""
    world.configure(EXPORT_MAX_PAGES_PER_INVOCATION=str(pages))
    result = world.invoke(export_job)
    assert result["done"] is False
    world.configure(EXPORT_MAX_PAGES_PER_INVOCATION="0")
    return result


def assert_nothing_visible(world: ExportWorld, list_id: str) -> None:
    assert world.keys(f"mailchimp/audiences/{list_id}/") == []
    assert world.keys("mailchimp/_staging/") == []
    assert world.pending_uploads() == []


def test_a_run_stopped_after_a_few_pages_resumes_and_holds_every_member_once(world: ExportWorld, audience: str) -> None:
    # Given invocations that may fetch only 3 pages each
    world.configure(EXPORT_MAX_PAGES_PER_INVOCATION="3")
    truth = sandbox_members(world.sandbox, audience, fields=EMAIL_AND_STATUS)

    # When the export is driven until done
    result, invocations = world.run(job(audience, mode="full"))

    # Then it took many invocations, and the object holds every member exactly once
    manifest = world.only_manifest(audience)
    _, rows = world.csv_rows(manifest["object"]["key"])
    emails = Counter(row["Email Address"] for row in rows)
    assert invocations >= 9 and manifest["invocations"] == invocations
    assert len(rows) == AUDIENCE_SIZE and set(emails.values()) == {1}
    assert {row["Email Address"]: row["STATUS"] for row in rows} == {e: m["status"] for e, m in truth.items()}
    assert result["results"][0]["rows"] == AUDIENCE_SIZE


def test_a_resumed_run_reports_the_sha256_of_the_whole_object(world: ExportWorld, audience: str) -> None:
    # Given a run spread over many invocations (the hash cannot carry over: it is read back)
    world.configure(EXPORT_MAX_PAGES_PER_INVOCATION="4")

    # When it finishes
    world.run(job(audience, mode="full", format="jsonl"))

    # Then the manifest's SHA-256 and size are those of the stored object, a valid gzip file
    manifest = world.only_manifest(audience)
    body = world.body(manifest["object"]["key"])
    assert manifest["object"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert manifest["object"]["bytes"] == len(body)
    assert len(gzip.decompress(body).splitlines()) == AUDIENCE_SIZE


def test_a_stopped_run_keeps_its_unfinished_bytes_out_of_the_audience_folder(world: ExportWorld, audience: str) -> None:
    # When a run stops after its first invocation
    started(world, job(audience, mode="full"))

    # Then nothing is visible under the audience: the upload is pending, the tail is staged
    assert world.keys(f"mailchimp/audiences/{audience}/") == []
    assert len(world.pending_uploads()) == 1
    assert len(world.keys("mailchimp/_staging/")) == 1


def test_an_aborted_run_leaves_no_object_no_manifest_and_no_upload(world: ExportWorld, audience: str) -> None:
    # Given a run that stopped halfway (an upload in progress, a staged tail, a checkpoint)
    progress = started(world, job(audience, mode="full"))

    # When the state machine gives up on it and asks for an abort
    result = world.invoke({**progress, "action": "abort", "error": {"Error": "States.Timeout"}})

    # Then nothing of it is visible, and its checkpoint and lock are gone
    assert result["done"] is True and result["results"][-1]["outcome"] == "aborted"
    assert_nothing_visible(world, audience)
    assert set(world.state_items(audience)) == set()


def test_after_an_abort_the_next_run_exports_everything_again(world: ExportWorld, audience: str) -> None:
    # Given an incremental run that was aborted halfway
    progress = started(world, job(audience))
    world.invoke({**progress, "action": "abort"})

    # When the next incremental run comes
    result, _ = world.run(job(audience))

    # Then it exports the whole audience (the watermark never moved)
    assert result["results"][0]["rows"] == AUDIENCE_SIZE


def test_a_transient_failure_keeps_the_checkpoint_and_a_retry_resumes(
    world: ExportWorld, audience: str, virtual_clock: VirtualClock
) -> None:
    # Given a run halfway, and Mailchimp then failing with 503 (more than the retries cover)
    progress = started(world, job(audience, mode="full"))
    world.sandbox.faults(error_rate=1.0, statuses=[503])

    # When the next invocation runs, then Mailchimp recovers and the state machine retries
    # (only the failing invocation has little patience: on a busy machine a 1 s budget also
    # cuts off a healthy page)
    world.configure(MAILCHIMP_MAX_ATTEMPTS="2", MAILCHIMP_RETRY_BUDGET_SECONDS="1")
    with pytest.raises(ExportInterrupted):
        world.invoke(progress)
    world.sandbox.faults()
    world.configure(MAILCHIMP_MAX_ATTEMPTS="4", MAILCHIMP_RETRY_BUDGET_SECONDS="8")
    result, _ = world.run(progress)

    # Then the run completed from its checkpoint, every member exactly once
    _, rows = world.csv_rows(world.only_manifest(audience)["object"]["key"])
    assert len(rows) == AUDIENCE_SIZE == len({row["Email Address"] for row in rows})
    assert result["results"][0]["outcome"] == "exported"


def test_a_permanent_failure_aborts_the_run_and_leaves_nothing_visible(world: ExportWorld, audience: str) -> None:
    # Given a run halfway, and then the API key revoked
    progress = started(world, job(audience, mode="full"))
    world.sandbox.set_keys(marketing=["0000000000000000000000000000000a-us21"])

    # When the next invocation runs
    with pytest.raises(ExportFailed):
        world.invoke(progress)

    # Then the run was aborted on the spot
    assert_nothing_visible(world, audience)
    assert set(world.state_items(audience)) == set()


def test_a_second_run_of_the_stream_is_refused_while_the_first_holds_the_lock(
    world: ExportWorld, audience: str
) -> None:
    # Given the 02:00 run halfway
    started(world, job(audience, scheduled_time="2025-01-06T02:00:00Z"))

    # When the 03:00 run of the same stream starts
    # Then it is told the stream is busy (the state machine waits and retries)
    with pytest.raises(ExportBusy):
        world.invoke(job(audience, scheduled_time="2025-01-06T03:00:00Z"))


def test_a_busy_run_exports_after_the_first_one_finishes(world: ExportWorld, audience: str) -> None:
    # Given the 02:00 run halfway, and the 03:00 run refused meanwhile
    first = started(world, job(audience, scheduled_time="2025-01-06T02:00:00Z"))
    second = job(audience, scheduled_time="2025-01-06T03:00:00Z")
    with pytest.raises(ExportBusy):
        world.invoke(second)

    # When the 02:00 run finishes and the 03:00 run is retried
    world.run(first)
    result, _ = world.run(second)

    # Then both exported; the second only what changed after the first (nothing)
    assert result["results"][0]["outcome"] == "exported"
    assert result["results"][0]["rows"] == 0


def test_a_run_whose_owner_died_is_taken_over_after_its_lease(world: ExportWorld, audience: str) -> None:
    # Given a run halfway whose invocations stopped coming long enough for its lease to run out
    started(world, job(audience, mode="full", scheduled_time="2025-01-06T02:00:00Z"))
    world.expire_lease(audience)

    # When another run of the stream starts after the lease ran out
    result, _ = world.run(job(audience, mode="full", scheduled_time="2025-01-06T03:00:00Z"))

    # Then it exports, and the dead run's upload and staged tail are gone
    assert result["results"][0]["rows"] == AUDIENCE_SIZE
    assert world.pending_uploads() == []
    assert world.keys("mailchimp/_staging/") == []
    assert len(world.keys(f"mailchimp/audiences/{audience}/")) == 2


def test_an_invalid_job_is_refused_with_the_field_named(world: ExportWorld) -> None:
    # When the schedule's input has a typo
    # Then the function fails before doing anything, naming the field
    with pytest.raises(Exception, match="audience") as caught:
        world.invoke({"audience": ["a1b2c3d4e5"]})
    assert type(caught.value).__name__ == "InvalidRequest"


def test_a_new_run_asks_for_each_page_once_though_its_first_round_left_before_the_state_was_read(
    world: ExportWorld, audience: str
) -> None:
    # Given an audience of 25 pages, and Mailchimp's request count before the run
    asked_before = world.sandbox.stats()["requests"]

    # When it is exported in one invocation (the first round goes out before DynamoDB is read)
    result, invocations = world.run(job(audience, mode="full"))

    # Then that round was kept: the merge fields and every page, each asked for once
    assert invocations == 1 and result["results"][0]["rows"] == AUDIENCE_SIZE
    assert world.sandbox.stats()["requests"] - asked_before == 1 + AUDIENCE_SIZE // 1000


def test_a_resumed_invocation_asks_only_for_the_pages_it_exports(world: ExportWorld, audience: str) -> None:
    # Given a run stopped after its first invocation, and invocations of 3 pages each
    progress = started(world, job(audience, mode="full"))
    world.configure(EXPORT_MAX_PAGES_PER_INVOCATION="3")
    asked_before = world.sandbox.stats()["requests"]

    # When the next invocation continues it
    result = world.invoke(progress)

    # Then it fetched nothing ahead for a new run: its 3 pages were all it asked for
    assert result["done"] is False
    assert world.sandbox.stats()["requests"] - asked_before == 3


def test_a_retried_first_invocation_drops_what_it_fetched_ahead_and_resumes(world: ExportWorld, audience: str) -> None:
    # Given a run whose first invocation stopped after 3 pages, and the state machine retrying
    # that invocation's input (no progress in it: the next step takes its window for a new run's)
    export_job = job(audience, mode="full", execution="first-step-retried")
    started(world, export_job)

    # When the retried job is driven to the end
    result, _ = world.run(export_job)

    # Then the run went on from its checkpoint: every member exactly once
    _, rows = world.csv_rows(world.only_manifest(audience)["object"]["key"])
    assert len(rows) == AUDIENCE_SIZE == len({row["Email Address"] for row in rows})
    assert result["results"][0]["outcome"] == "exported"
