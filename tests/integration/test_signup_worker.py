"""The signup worker: queued signups applied from real SQS messages (moto) to the sandbox."""

import json
import uuid

import pytest

from sandbox.mailchimp import DEFAULT_LIST_ID
from tests.support.functions import LambdaContext, event, load_function
from tests.support.scripted_http import Answer, ScriptedServer
from tests.support.signup import INVALID_INTEREST
from tests.support.signup_queue import failed_ids, queue_signups, queued

pytestmark = pytest.mark.xdist_group("signup")


@pytest.fixture
def worker(signup_api):
    signup_api.configure(SIGNUP_WORKER_CONCURRENCY="4", SIGNUP_RETRY_BASE_DELAY_SECONDS="30")
    return load_function("signup_worker")


def test_queued_signup_is_applied_like_a_direct_one(signup_api, worker, new_email):
    # Given a signup that waited on the queue
    email = new_email()
    batch = queue_signups(signup_api, queued(email, merge_fields={"FNAME": "Quinn"}, tags=["blog"], language="fr"))
    # When the worker gets it
    result = worker.lambda_handler(batch, LambdaContext(timeout_seconds=30))
    # Then the person is pending with everything they sent, and the record is done
    assert failed_ids(result) == []
    member = signup_api.member(email)
    assert (member["status"], member["merge_fields"]["FNAME"], member["language"]) == ("pending", "Quinn", "fr")
    assert [tag["name"] for tag in member["tags"]] == ["blog"]


def test_a_queued_signup_delivered_twice_leaves_one_member(signup_api, worker, new_email):
    email = new_email()
    worker.lambda_handler(queue_signups(signup_api, queued(email)), LambdaContext())
    count = signup_api.member_count()
    result = worker.lambda_handler(queue_signups(signup_api, queued(email)), LambdaContext())
    assert failed_ids(result) == []
    assert signup_api.member_count() == count


def test_queued_signup_never_makes_a_subscribed_person_pending(signup_api, worker, new_email):
    email = new_email()
    signup_api.put_member(email, "subscribed")
    worker.lambda_handler(queue_signups(signup_api, queued(email, merge_fields={"FNAME": "Still"})), LambdaContext())
    member = signup_api.member(email)
    # Neither made pending nor changed by an anonymous signup
    assert (member["status"], member["merge_fields"]["FNAME"]) == ("subscribed", "")


def test_queued_unsubscribed_person_becomes_pending(signup_api, worker, new_email):
    email = new_email()
    signup_api.put_member(email, "unsubscribed")
    worker.lambda_handler(queue_signups(signup_api, queued(email)), LambdaContext())
    assert signup_api.member(email)["status"] == "pending"


def test_permanent_refusal_is_final_not_retried(signup_api, worker, new_email):
    # Given a queued address Mailchimp will never take
    batch = queue_signups(signup_api, queued(new_email(domain="example.com")))
    # When the worker applies it
    result = worker.lambda_handler(batch, LambdaContext())
    # Then the record counts as done (logged and counted, not retried)
    assert failed_ids(result) == []


def dead_letter_queue(signup_api):
    """A DLQ of the test's own, as the template wires SIGNUP_DEAD_LETTER_QUEUE_URL."""
    url = signup_api.sqs.create_queue(QueueName=f"signups-dlq-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    signup_api.configure(SIGNUP_DEAD_LETTER_QUEUE_URL=url)
    return url


def dead_letters(signup_api, url):
    response = signup_api.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
    )
    return response.get("Messages", [])


def test_a_400_about_our_configuration_goes_to_the_dlq_at_once_with_the_reason(signup_api, worker, new_email, logged):
    # Given Mailchimp refusing queued signups over a setting of ours (an interest id)
    dlq = dead_letter_queue(signup_api)
    signup = queued(new_email(), interests={"zzzzzzzzzz": True})
    batch = queue_signups(signup_api, signup)
    with ScriptedServer(INVALID_INTEREST) as mailchimp:
        signup_api.configure(MAILCHIMP_API_URL=mailchimp.url + "/3.0")
        # When the worker applies it, on its first receive
        result = worker.lambda_handler(batch, LambdaContext())
    # Then it is not retried for hours: it is done here and waits in the DLQ, as it was queued,
    # with the reason; the log says what Mailchimp refused
    assert failed_ids(result) == []
    [parked] = dead_letters(signup_api, dlq)
    assert parked["Body"] == signup.to_json()
    assert parked["MessageAttributes"]["refusal_reason"]["StringValue"] == "mailchimp 400 Invalid Resource"
    assert parked["MessageAttributes"]["receive_count"]["StringValue"] == "1"
    [refused] = [line for line in logged() if line["level"] == "ERROR" and "detail" in line]
    assert "Invalid interest ID" in refused["detail"]


def test_a_field_mailchimp_refuses_in_a_queued_signup_goes_to_the_dlq_not_away(signup_api, worker, new_email):
    # Given a merge field whose type changed since the signup was queued: the person is gone
    # and cannot fix it; only the operator can
    dlq = dead_letter_queue(signup_api)
    changed_type = Answer(
        400,
        {
            "title": "Invalid Resource",
            "status": 400,
            "detail": "Your merge fields were invalid.",
            "errors": [{"field": "MMERGE9", "message": "Please enter a number"}],
        },
        content_type="application/problem+json",
    )
    batch = queue_signups(signup_api, queued(new_email(), merge_fields={"MMERGE9": "nine"}))
    with ScriptedServer(changed_type) as mailchimp:
        signup_api.configure(MAILCHIMP_API_URL=mailchimp.url + "/3.0")
        result = worker.lambda_handler(batch, LambdaContext())
    # Then it is kept in the DLQ for a re-drive instead of being dropped
    assert failed_ids(result) == []
    assert len(dead_letters(signup_api, dlq)) == 1


def test_a_message_the_worker_cannot_read_goes_to_the_dlq_at_once(signup_api, worker):
    dlq = dead_letter_queue(signup_api)
    batch = queue_signups(signup_api, '{"signup": "not a signup"}')

    result = worker.lambda_handler(batch, LambdaContext())

    assert failed_ids(result) == []
    [parked] = dead_letters(signup_api, dlq)
    assert parked["MessageAttributes"]["refusal_reason"]["StringValue"] == "unreadable ValueError"


@pytest.mark.parametrize("status", [408, 429, 503])
def test_what_can_pass_stays_on_the_queue_and_not_in_the_dlq(signup_api, worker, new_email, status):
    dlq = dead_letter_queue(signup_api)
    batch = queue_signups(signup_api, queued(new_email()))
    signup_api.sandbox.faults(error_rate=1.0, statuses=[status])
    try:
        result = worker.lambda_handler(batch, LambdaContext())
    finally:
        signup_api.sandbox.faults()
    assert failed_ids(result) == [batch["Records"][0]["messageId"]]
    assert dead_letters(signup_api, dlq) == []


def test_queued_signup_missing_a_required_field_is_still_added(signup_api, worker, new_email):
    # The person can no longer be asked for it: on the list beats lost.
    signup_api.lists.add_list_merge_field(
        DEFAULT_LIST_ID, {"tag": "COMPANY", "name": "Company", "type": "text", "required": True}
    )
    email = new_email()
    result = worker.lambda_handler(queue_signups(signup_api, queued(email)), LambdaContext())
    assert failed_ids(result) == []
    assert signup_api.member(email)["status"] == "pending"


def test_transient_failures_are_reported_and_delayed(signup_api, worker, new_email, virtual_clock):
    # Given Mailchimp still answering 503
    signup_api.sandbox.faults(error_rate=1.0, statuses=[503])
    batch = queue_signups(signup_api, queued(new_email()), queued(new_email()))
    # When the worker tries the batch
    result = worker.lambda_handler(batch, LambdaContext())
    # Then both records stay on the queue, hidden for a while instead of coming straight back
    assert sorted(failed_ids(result)) == sorted(record["messageId"] for record in batch["Records"])
    again = signup_api.sqs.receive_message(QueueUrl=signup_api.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    assert again.get("Messages", []) == []


def test_only_the_failed_records_of_a_batch_are_retried(signup_api, worker, new_email):
    ok = queued(new_email())
    broken = "{not a queued signup"
    batch = queue_signups(signup_api, ok, broken)
    result = worker.lambda_handler(batch, LambdaContext())
    broken_id = next(record["messageId"] for record in batch["Records"] if record["body"] == broken)
    assert failed_ids(result) == [broken_id]
    assert signup_api.member(ok.signup.email)["status"] == "pending"


def test_sample_event_is_applied(signup_api, worker):
    result = worker.lambda_handler(event("signup_worker/queued-signups.json"), LambdaContext())
    assert failed_ids(result) == []
    assert signup_api.member("queued.one@example.org")["merge_fields"]["FNAME"] == "Quinn"


def test_queued_message_shape_is_stable_for_other_producers(signup_api, worker, new_email):
    # The registration hook enqueues QueuedSignup JSON too: the minimal document must work.
    email = new_email()
    minimal = {
        "signup": {"list_id": DEFAULT_LIST_ID, "email": email},
        "queued_at": "2026-01-01T00:00:00Z",
        "reason": "opt-in",
    }
    result = worker.lambda_handler(queue_signups(signup_api, json.dumps(minimal)), LambdaContext())
    assert failed_ids(result) == []
    assert signup_api.member(email)["status"] == "pending"


def test_once_mailchimp_fails_a_record_the_rest_of_the_batch_is_not_sent(signup_api, new_email, virtual_clock):
    # Given a worker applying one record at a time, and Mailchimp down
    signup_api.configure(SIGNUP_WORKER_CONCURRENCY="1", MAILCHIMP_MAX_ATTEMPTS="2")
    worker = load_function("signup_worker")
    signup_api.sandbox.faults(error_rate=1.0, statuses=[503])
    batch = queue_signups(signup_api, *[queued(new_email()) for _ in range(5)])
    before = signup_api.sandbox.stats()["requests"]
    # When the batch is processed
    result = worker.lambda_handler(batch, LambdaContext())
    # Then all five go back to the queue, but only the first one's create reached Mailchimp (a
    # POST is not repeated after a 5xx, which may follow a create that happened: the record's
    # next receive tries again, and meets "Member Exists" if it did)
    assert len(failed_ids(result)) == 5
    assert signup_api.sandbox.stats()["requests"] - before == 1


def test_throttling_does_not_stop_the_rest_of_the_batch(signup_api, new_email, virtual_clock):
    # Given a worker applying one record at a time, and Mailchimp at its connection cap (429);
    # short timeouts, so that a repeated create (POST) always fits before the deadline
    signup_api.configure(
        SIGNUP_WORKER_CONCURRENCY="1",
        MAILCHIMP_MAX_ATTEMPTS="2",
        MAILCHIMP_CONNECT_TIMEOUT_SECONDS="1",
        MAILCHIMP_READ_TIMEOUT_SECONDS="1",
    )
    worker = load_function("signup_worker")
    signup_api.sandbox.faults(error_rate=1.0, statuses=[429])
    batch = queue_signups(signup_api, *[queued(new_email()) for _ in range(5)])
    before = signup_api.sandbox.stats()["requests"]
    # When the batch is processed
    result = worker.lambda_handler(batch, LambdaContext())
    # Then every record had its own two attempts: a throttle is not an outage, and a record's
    # receive count is spent only on a real try
    assert len(failed_ids(result)) == 5
    assert signup_api.sandbox.stats()["requests"] - before == 10


def test_the_next_batch_tries_mailchimp_again(signup_api, worker, new_email, virtual_clock):
    signup_api.sandbox.faults(error_rate=1.0, statuses=[503])
    worker.lambda_handler(queue_signups(signup_api, queued(new_email())), LambdaContext())
    signup_api.sandbox.faults()
    email = new_email()
    result = worker.lambda_handler(queue_signups(signup_api, queued(email)), LambdaContext())
    assert failed_ids(result) == []
    assert signup_api.member(email)["status"] == "pending"
