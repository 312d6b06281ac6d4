"""The email sender sends what Mandrill refuses for good (a 4xx other than 408 and 429) to the
DLQ at once, with the reason, instead of receiving it 30 times first. The real handler, the
sandbox as Mandrill, AWS on moto."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.functions import LambdaContext, load_function
from tests.support.registration import queued_email


def queued_message():
    return queued_email({"first": "Dorothy"})


@pytest.fixture
def dead_letter_queue(email_env, monkeypatch):
    url = email_env.sqs.create_queue(QueueName=f"email-dlq-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    monkeypatch.setenv("EMAIL_DEAD_LETTER_QUEUE_URL", url)
    return url


def deliver(email_env, message):
    sender = load_function("email_sender")
    received = email_env.queue(message)
    return sender.lambda_handler(email_env.sqs_event([received]), LambdaContext(timeout_seconds=30))


def dead_letters(email_env, url):
    response = email_env.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return response.get("Messages", [])


def test_an_email_mandrill_refuses_for_good_goes_to_the_dlq_at_once(
    email_env, dead_letter_queue, make_secret, monkeypatch
):
    # Given a Mandrill key Mandrill does not know (401 Invalid_Key: no retry can change it)
    monkeypatch.setenv("MANDRILL_SECRET_ARN", make_secret(json.dumps({"api_key": "revoked-key"})))
    message = queued_message()

    # When the sender gets the message on its first receive
    result = deliver(email_env, message)

    # Then the record is done here, and the message waits in the DLQ as queued, with the reason
    assert result == {"batchItemFailures": []}
    [parked] = dead_letters(email_env, dead_letter_queue)
    assert json.loads(parked["Body"]) == message
    assert parked["MessageAttributes"]["refusal_reason"]["StringValue"] == "mandrill 401 Invalid_Key"
    assert email_env.sandbox.outbox(to=message["recipient"]["email"]) == []
    assert email_env.idempotency_records() == []


def test_a_mandrill_outage_stays_on_the_queue_and_not_in_the_dlq(email_env, dead_letter_queue):
    email_env.sandbox.faults(error_rate=1.0, statuses=[503])
    try:
        result = deliver(email_env, queued_message())
    finally:
        email_env.sandbox.faults()

    assert len(result["batchItemFailures"]) == 1
    assert dead_letters(email_env, dead_letter_queue) == []


def test_a_message_the_sender_cannot_read_goes_to_the_dlq_at_once(email_env, dead_letter_queue):
    # Given a message queued under older rules: a name with a CR/LF, which the sender refuses to read
    message = queued_message()
    message["recipient"]["name"] = {"first": "Dorothy\r\nBcc: someone@example.org"}

    # When the sender gets it on its first receive
    result = deliver(email_env, message)

    # Then it waits in the DLQ with why, and nothing was sent
    assert result == {"batchItemFailures": []}
    [parked] = dead_letters(email_env, dead_letter_queue)
    assert parked["MessageAttributes"]["refusal_reason"]["StringValue"] == "unreadable ValidationError"
    assert email_env.sandbox.outbox(to=message["recipient"]["email"]) == []


def test_without_a_dead_letter_queue_a_refused_message_stays_on_its_queue(email_env, make_secret, monkeypatch):
    # As before the dead-letter wiring (sam local invoke without the variable, say): retried
    monkeypatch.delenv("EMAIL_DEAD_LETTER_QUEUE_URL", raising=False)
    monkeypatch.setenv("MANDRILL_SECRET_ARN", make_secret(json.dumps({"api_key": "revoked-key"})))

    result = deliver(email_env, queued_message())

    assert len(result["batchItemFailures"]) == 1
