"""An export that dies at the worst moment, meets another execution of its own schedule tick, or
finds the stream's state changed under it: it finishes exactly once, or nothing of it stays
visible. AWS failures moto cannot produce come from a proxy in front of it (tests/support/
aws_faults.py); Mailchimp's other reading of ``since_last_changed`` from the sandbox."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator

import pytest

from chimpbridge.errors import ExportBusy, ExportInterrupted
from sandbox.mailchimp.client import SandboxClient
from tests.support.audience_world import new_list_id
from tests.support.aws_faults import AwsFaults, s3_error, transaction_cancelled
from tests.support.export import (
    AUDIENCE_SIZE,
    EMAIL_AND_STATUS,
    EXPORT_TIMEOUT_SECONDS,
    ExportWorld,
    job,
    sandbox_members,
)

SMALL_AUDIENCE = 6000
PAGES_PER_INVOCATION = 2  # 6,000 members: three invocations, the last one completes the upload
# The longest the state machine waits before calling the function again (the ASL's Retry rules).
LONGEST_RETRY_WAIT_SECONDS = 600


@pytest.fixture
def small_audience(mailchimp: SandboxClient) -> str:
    list_id = new_list_id()
    mailchimp.seed(list_id, SMALL_AUDIENCE)
    return list_id


@pytest.fixture
def aws_faults(world: ExportWorld) -> Iterator[AwsFaults]:
    """The function's AWS calls go through a proxy that can fail chosen ones."""
    with AwsFaults(world.moto_url) as faults:
        world.configure(AWS_ENDPOINT_URL=faults.url)
        yield faults


def started(world: ExportWorld, export_job: dict[str, object]) -> dict[str, object]:
    world.configure(EXPORT_MAX_PAGES_PER_INVOCATION=str(PAGES_PER_INVOCATION))
    result = world.invoke(export_job)
    assert result["done"] is False
    return result


def run_until_it_fails(world: ExportWorld, progress: dict[str, object]) -> dict[str, object]:
    """Invoke until an invocation raises; returns the job that invocation was given."""
    for _ in range(20):
        try:
            result = world.invoke(progress)
        except (ExportInterrupted, ExportBusy):
            return progress
        assert result["done"] is False, "the export finished without failing"
        progress = result
    raise AssertionError("no invocation failed")


def assert_exported_once(world: ExportWorld, list_id: str, result: dict[str, object]) -> None:
    """Done, with a manifest describing an object that holds every member exactly once."""
    manifest = world.only_manifest(list_id)
    _, rows = world.csv_rows(manifest["object"]["key"])
    body = world.body(manifest["object"]["key"])
    truth = sandbox_members(world.sandbox, list_id, fields=EMAIL_AND_STATUS)
    assert Counter(row["Email Address"] for row in rows) == Counter(list(truth))
    assert manifest["rows"] == len(truth) and manifest["object"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert result["done"] is True and result["results"][0]["outcome"] == "exported"  # type: ignore[index]
    assert world.pending_uploads() == [] and world.keys("mailchimp/_staging/") == []


def assert_nothing_visible(world: ExportWorld, list_id: str) -> None:
    assert world.keys(f"mailchimp/audiences/{list_id}/") == []
    assert world.keys("mailchimp/_staging/") == []
    assert world.pending_uploads() == []


# ---------------------------------------------------------------- dying after the upload completed
@pytest.mark.parametrize("s3_remembers_the_upload", [True, False], ids=["completion-repeated", "no-such-upload"])
def test_a_run_that_died_right_after_completing_its_upload_publishes_on_the_retry(
    world: ExportWorld, aws_faults: AwsFaults, small_audience: str, s3_remembers_the_upload: bool
) -> None:
    # Given a run whose checkpoint cannot be written right after S3 completed its upload (the
    # write throttled or conflicting, or the Lambda timing out there), and S3 then either
    # answering a repeated completion as it did the first or no longer knowing the upload
    progress = started(world, job(small_audience, mode="full"))
    aws_faults.fail(
        "TransactWriteItems", transaction_cancelled("None", "ThrottlingError"), after="CompleteMultipartUpload"
    )
    if not s3_remembers_the_upload:
        gone = s3_error(404, "NoSuchUpload", "The specified upload does not exist.")
        aws_faults.fail("CompleteMultipartUpload", gone, after="CompleteMultipartUpload")
    failing = run_until_it_fails(world, progress)

    # When the state machine retries the invocation
    result, _ = world.run(failing)

    # Then the run is published once, whole, from the object already completed
    assert aws_faults.failed[0] == "TransactWriteItems"
    assert_exported_once(world, small_audience, result)


def test_an_aborted_run_whose_upload_was_already_completed_leaves_no_object(
    world: ExportWorld, aws_faults: AwsFaults, small_audience: str
) -> None:
    # Given a run that died right after S3 completed its upload, before it could checkpoint
    progress = started(world, job(small_audience, mode="full"))
    aws_faults.fail(
        "TransactWriteItems", transaction_cancelled("None", "ThrottlingError"), after="CompleteMultipartUpload"
    )
    failing = run_until_it_fails(world, progress)

    # When the state machine gives up on it
    result = world.invoke({**failing, "action": "abort", "error": {"Error": "ExportInterrupted"}})

    # Then the completed object is gone too: nothing of the run is visible
    assert result["results"][-1]["outcome"] == "aborted"
    assert_nothing_visible(world, small_audience)
    assert set(world.state_items(small_audience)) == set()


# ---------------------------------------------------------------- dying after the object was put whole
@pytest.mark.parametrize("then", ["retried", "aborted"])
def test_a_run_that_died_right_after_putting_its_object_whole_finishes_once_or_leaves_nothing(
    world: ExportWorld, aws_faults: AwsFaults, small_audience: str, then: str
) -> None:
    # Given a run small enough to end in one invocation (its object is put whole, no upload),
    # whose checkpoint cannot be written right after the object was put
    export_job = job(small_audience, mode="full", execution=f"put-whole-{then}")
    aws_faults.fail(
        "TransactWriteItems", transaction_cancelled("None", "ThrottlingError"), after="PutObject", after_path=".csv.gz"
    )
    with pytest.raises(ExportInterrupted):
        world.invoke(export_job)
    visible = world.keys(f"mailchimp/audiences/{small_audience}/")
    assert len(visible) == 1 and visible[0].endswith(".csv.gz")  # the object; its manifest withdrawn
    assert world.pending_uploads() == []

    # When the state machine retries the invocation, or gives up on it
    if then == "retried":
        result, _ = world.run(export_job)

        # Then the run is published once, whole
        assert_exported_once(world, small_audience, result)
    else:
        result = world.invoke({**export_job, "action": "abort", "error": {"Error": "ExportInterrupted"}})

        # Then the object put whole is gone too: nothing of the run is visible
        assert result["results"][-1]["outcome"] == "aborted"
        assert_nothing_visible(world, small_audience)
        assert set(world.state_items(small_audience)) == set()


# ---------------------------------------------------------------- two executions of one tick
def test_an_abort_by_another_execution_of_the_same_tick_leaves_the_live_run_alone(
    world: ExportWorld, small_audience: str
) -> None:
    # Given the 02:00 tick delivered twice (Scheduler is at-least-once): execution A exports,
    # execution B was told the stream is busy until its retries ran out
    tick = job(small_audience, mode="full", scheduled_time="2025-01-06T02:00:00Z")
    first = started(world, {**tick, "execution": "tick-0200-a"})
    with pytest.raises(ExportBusy):
        world.invoke({**tick, "execution": "tick-0200-b"})

    # When B's execution aborts
    world.invoke({**tick, "execution": "tick-0200-b", "action": "abort", "error": {"Error": "ExportBusy"}})

    # Then A's run is untouched (upload, staged bytes, checkpoint and lock) and finishes whole
    assert len(world.pending_uploads()) == 1 and len(world.keys("mailchimp/_staging/")) == 1
    assert {"checkpoint", "lock"} <= set(world.state_items(small_audience))
    world.configure(EXPORT_MAX_PAGES_PER_INVOCATION="0")
    result, _ = world.run(first)
    assert_exported_once(world, small_audience, result)


def test_a_live_runs_lock_outlasts_its_invocation_and_the_longest_retry_wait(
    world: ExportWorld, small_audience: str
) -> None:
    # When a run's first invocation returns (the Lambda may run 15 minutes, and the state
    # machine may wait 10 more before the next call)
    started(world, job(small_audience, mode="full"))

    # Then its lock holds at least that long: no other execution can take over a live run
    assert world.lease_left(small_audience) > EXPORT_TIMEOUT_SECONDS + LONGEST_RETRY_WAIT_SECONDS


# ---------------------------------------------------------------- the commit of a finished run
def test_a_run_whose_stream_moved_on_withdraws_its_manifest_and_object(world: ExportWorld, small_audience: str) -> None:
    # Given a run halfway, and another run of the stream committing meanwhile (its watermark
    # moved: only a lost lock allows that)
    progress = started(world, job(small_audience, mode="full"))
    world.move_watermark(small_audience, 1_700_000_000)
    world.configure(EXPORT_MAX_PAGES_PER_INVOCATION="0")

    # When the run finishes and its commit is refused
    with pytest.raises(ExportBusy):
        world.invoke(progress)

    # Then neither its manifest nor its object stays visible, and the next attempt exports anew
    assert_nothing_visible(world, small_audience)
    assert "checkpoint" not in world.state_items(small_audience)
    result, _ = world.run(progress)
    assert_exported_once(world, small_audience, result)


@pytest.mark.parametrize("reason", ["TransactionConflict", "ThrottlingError"])
def test_a_commit_refused_for_contention_is_retried_without_a_manifest_meanwhile(
    world: ExportWorld, aws_faults: AwsFaults, small_audience: str, reason: str
) -> None:
    # Given DynamoDB cancelling the commit transaction once, for contention rather than a condition
    refused = transaction_cancelled("None", "None", "None", reason)
    aws_faults.fail("TransactWriteItems", refused, after="PutObject", after_path="/manifests/")

    # When the export runs (one invocation): it is interrupted, and the state machine retries it
    export_job = job(small_audience, mode="full", execution="contention")
    with pytest.raises(ExportInterrupted):
        world.invoke(export_job)
    manifests_meanwhile = [key for key in world.keys(f"mailchimp/audiences/{small_audience}/") if "/manifests/" in key]
    result, _ = world.run(export_job)

    # Then no manifest was visible while the run was not committed, and the retry published it
    assert manifests_meanwhile == []
    assert_exported_once(world, small_audience, result)


# ---------------------------------------------------------------- Mailchimp's since_last_changed
def test_an_exclusive_since_last_changed_makes_nobody_skipped_or_repeated(world: ExportWorld, audience: str) -> None:
    # Given Mailchimp reading since_last_changed as its reference words it ("changed after"),
    # and a run that resumes from a checkpoint many times (3 pages per invocation)
    world.sandbox.options(since_last_changed="exclusive")
    world.configure(EXPORT_MAX_PAGES_PER_INVOCATION="3")

    # When the audience is exported
    result, invocations = world.run(job(audience, mode="full"))

    # Then every member is in the object exactly once
    assert invocations >= 9 and result["results"][0]["rows"] == AUDIENCE_SIZE
    assert_exported_once(world, audience, result)
