"""dal/idempotency.Once: Powertools Idempotency on a moto DynamoDB table, as the hook and the
email sender use it (a repeat is answered from the table, marked; a concurrent one is Busy)."""

import threading
import uuid

import pytest
from pydantic import BaseModel

from chimpbridge.dal import idempotency
from chimpbridge.errors import Busy


class Job(BaseModel):
    key: str


class Done(BaseModel):
    value: str
    duplicate: bool = False


class NoDuplicateField(BaseModel):
    value: str


def make_once(email_env, work, model=Done):
    """``work`` made idempotent on the job's key, in the table of ``email_env`` (IDEMPOTENCY_TABLE)."""
    once = idempotency.Once(
        key_prefix="test-once", key_path="key", result_model=model, busy_message="this job is running elsewhere"
    )
    return once.wrap(work, data_keyword="job", expires_after_seconds=60)


def test_a_repeat_gets_the_first_result_marked_duplicate(email_env):
    # Given an operation made idempotent on the job's key
    calls = []

    def work(*, job):
        calls.append(job.key)
        return Done(value=f"done {job.key}")

    run = make_once(email_env, work)
    job = Job(key=uuid.uuid4().hex)

    # When it is called twice with the same key
    first, second = run(job=job), run(job=job)

    # Then it ran once; the repeat got the stored result, marked as a duplicate
    assert calls == [job.key]
    assert first == Done(value=f"done {job.key}")
    assert second == Done(value=f"done {job.key}", duplicate=True)
    (record,) = email_env.idempotency_records()
    assert record["id"]["S"].startswith("test-once#")


def test_a_call_while_the_first_still_runs_is_busy(email_env):
    # Given a first call that is still running
    running, release = threading.Event(), threading.Event()

    def work(*, job):
        running.set()
        release.wait(10)
        return Done(value="done")

    run = make_once(email_env, work)
    job = Job(key=uuid.uuid4().hex)
    first = threading.Thread(target=run, kwargs={"job": job})
    first.start()
    assert running.wait(10)

    # When a second call with the same key comes in
    with pytest.raises(Busy) as raised:
        run(job=job)
    release.set()
    first.join()

    # Then it is told to come back later, with the caller's message
    assert raised.value.message == "this job is running elsewhere"


def test_the_wrapper_is_built_once_and_forgotten_by_clear(email_env):
    def work(*, job):
        return Done(value="done")

    assert make_once(email_env, work) is make_once(email_env, work)
    before = make_once(email_env, work)
    idempotency.clear()
    assert make_once(email_env, work) is not before


def test_a_result_model_without_a_duplicate_field_is_refused(email_env):
    def work(*, job):
        return NoDuplicateField(value="done")

    with pytest.raises(TypeError, match="duplicate"):
        make_once(email_env, work, NoDuplicateField)
