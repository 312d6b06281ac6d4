"""A 408 (Request Timeout) from Mailchimp or Mandrill is a passing failure, like a 429: retried
or queued, logged as a warning, never counted as our misconfiguration. The sandbox injects the
408s (PUT /_sandbox/faults); the functions are the real handlers on moto."""

import json
import random

import pytest

from chimpbridge.errors import MailchimpApiError, MandrillApiError, is_transient_status
from tests.support.functions import LambdaContext, load_function
from tests.support.registration import queued_email
from tests.support.signup_queue import failed_ids, queue_signups, queued

pytestmark = pytest.mark.xdist_group("signup")


def metrics_named(output: str, name: str) -> float:
    """The sum of metric ``name`` in the EMF lines the functions printed."""
    documents = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    return sum(sum(document.get(name, [])) for document in documents)


def seed_failing_only_the_first_call(error_rate: float = 0.5) -> int:
    """A fault seed whose first draw injects the error and whose second lets the call through
    (the sandbox draws ``random()`` for the error, then ``choice()`` of the status)."""
    for seed in range(1_000):
        draws = random.Random(seed)
        first_fails = draws.random() < error_rate
        draws.choice([408])
        if first_fails and draws.random() >= error_rate:
            return seed
    raise AssertionError("no such seed")


@pytest.mark.parametrize("status", [408, 429, 500, 503, None])
def test_408_is_transient_like_429_and_5xx(status):
    assert is_transient_status(status)
    assert MailchimpApiError("mailchimp", status, "x").transient
    assert MandrillApiError("mandrill", status, "x").transient


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 422])
def test_other_4xx_stay_permanent(status):
    assert not is_transient_status(status)


def test_a_408_on_signup_queues_it_with_a_warning_not_a_misconfiguration(signup_api, new_email, logged, capsys):
    # Given Mailchimp answering every call with 408 Request Timeout
    signup_api.sandbox.faults(error_rate=1.0, statuses=[408])
    email = new_email()

    # When someone signs up
    answer = signup_api.post_json({"email": email, "first_name": "Tim"})

    # Then the signup waits on the queue for the worker, as after any passing failure...
    assert answer.status == 202 and answer.body["status"] == "queued"
    [message] = signup_api.queued()
    assert message["reason"] == "mailchimp-408"
    # ...the log says so as a warning, and nothing is reported as our configuration
    lines = logged()
    assert [line["message"] for line in lines if line["level"] in ("ERROR", "CRITICAL")] == []
    assert any(line["level"] == "WARNING" for line in lines)
    assert metrics_named(capsys.readouterr().out, "SignupMisconfigured") == 0


def test_a_408_in_the_signup_worker_is_retried_with_a_warning(signup_api, new_email, logged, capsys):
    # Given Mailchimp answering 408, and a worker applying one record at a time
    signup_api.configure(SIGNUP_WORKER_CONCURRENCY="1", SIGNUP_RETRY_BASE_DELAY_SECONDS="30")
    worker = load_function("signup_worker")
    signup_api.sandbox.faults(error_rate=1.0, statuses=[408])
    batch = queue_signups(signup_api, *[queued(new_email()) for _ in range(3)])

    # When the worker processes the batch
    result = worker.lambda_handler(batch, LambdaContext())

    # Then every record goes back to the queue for a later try...
    assert sorted(failed_ids(result)) == sorted(record["messageId"] for record in batch["Records"])
    # ...each was tried (a 408 is about one call, not an outage that skips the rest)...
    assert signup_api.sandbox.stats()["responses_by_status"].get("408", 0) >= 3
    # ...logged as a warning, never counted or logged as our misconfiguration
    lines = logged()
    assert [line["message"] for line in lines if line["level"] in ("ERROR", "CRITICAL")] == []
    assert any(line["message"].startswith("queued signup not applied now") for line in lines)
    output = capsys.readouterr().out
    assert metrics_named(output, "QueuedSignupMisconfigured") == 0
    assert metrics_named(output, "QueuedSignupRetried") == 3


def test_a_send_answered_408_is_repeated_at_once_and_sent_once(email_env):
    # Given Mandrill answering the first send with 408 (it never read the request) and the next one normally
    email_env.sandbox.faults(
        error_rate=0.5, statuses=[408], apis=["transactional"], seed=seed_failing_only_the_first_call()
    )
    sender = load_function("email_sender")
    message = queued_email({"first": "Tim"}, prefix="timeout")

    # When the sender processes the email
    result = sender.lambda_handler(email_env.sqs_event([email_env.queue(message)]), LambdaContext(timeout_seconds=30))

    # Then the POST was repeated (a 408 means it was not acted on) and one email went out
    assert result == {"batchItemFailures": []}
    assert email_env.sandbox.stats()["responses_by_status"].get("408") == 1
    assert len(email_env.sandbox.outbox(to=message["recipient"]["email"])) == 1
