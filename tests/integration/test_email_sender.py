"""The email sender: real SQS events from a moto queue, the official Transactional SDK talking
HTTP to the Mailchimp sandbox, idempotency records in a moto DynamoDB table."""

import json
import threading
import time

import pytest

from chimpbridge.errors import Busy
from chimpbridge.logic import email_sender
from chimpbridge.models.email import EmailMessage
from tests.support.functions import LambdaContext, event, load_function
from tests.support.registration import FROM_ADDRESS, new_id, queued_email

MARKUP_NAME = '<a href="https://evil.example">x</a>'
ESCAPED_NAME = "&lt;a href=&quot;https://evil.example&quot;&gt;x&lt;/a&gt;"


@pytest.fixture
def sender(email_env):
    return load_function("email_sender")


def queued_message(**overrides):
    """A queued welcome email for Katherine Johnson (a new identity and flow)."""
    return queued_email({"first": "Katherine", "last": "Johnson"}, **overrides)


def deliver(sender, email_env, *messages):
    """Put the messages on the queue, receive them, and hand the batch to the function."""
    received = [email_env.queue(message) for message in messages]
    return sender.lambda_handler(email_env.sqs_event(received), LambdaContext(timeout_seconds=30))


def test_a_queued_email_is_sent_with_the_persons_name_rendered(sender, email_env):
    # Given a queued welcome email for Katherine
    message = queued_message()

    # When the sender processes it
    result = deliver(sender, email_env, message)

    # Then it succeeded and Mandrill accepted one email, rendered for her
    assert result == {"batchItemFailures": []}
    (sent,) = email_env.sandbox.outbox(to=message["recipient"]["email"])
    assert sent["from_email"] == FROM_ADDRESS and sent["from_name"] == "Acme"
    assert sent["subject"] == "Welcome to Acme"
    assert "Hi Katherine," in sent["html"] and "Hi Katherine," in sent["text"]
    assert sent["merge_language"] == "handlebars"
    assert sent["tags"] == ["registration"]
    assert sent["metadata"]["identity_id"] == message["identity_id"]
    assert sent["headers"] == {"Reply-To": "support@example.org"}
    assert sent["status"] == "sent"


def test_the_committed_sample_event_sends_one_email(sender, email_env):
    result = sender.lambda_handler(event("email_sender/welcome.json"), LambdaContext(timeout_seconds=30))

    assert result == {"batchItemFailures": []}
    assert len(email_env.sandbox.outbox(to="jane.doe@example.com")) == 1


def test_a_redelivered_message_is_not_sent_again(sender, email_env):
    # Given an email that was sent
    message = queued_message()
    deliver(sender, email_env, message)
    requests_before = email_env.sandbox.stats()["requests"]

    # When SQS delivers the same message again
    result = deliver(sender, email_env, message)

    # Then it succeeds without calling Mandrill, and there is still one email
    assert result == {"batchItemFailures": []}
    assert email_env.sandbox.stats()["requests"] == requests_before
    assert len(email_env.sandbox.outbox(to=message["recipient"]["email"])) == 1


def test_a_second_message_with_the_same_idempotency_key_is_not_sent(sender, email_env):
    # Given two queued messages for one registration (say, two hook deliveries)
    first = queued_message()
    second = {**first, "trigger_id": new_id(), "queued_at": "2026-01-15T09:31:00Z"}

    # When both are processed in one batch
    result = deliver(sender, email_env, first, second)

    # Then one email is sent; the other message is done (or retried later, never sent twice)
    assert len(email_env.sandbox.outbox(to=first["recipient"]["email"])) == 1
    assert len(result["batchItemFailures"]) <= 1


def test_a_batch_is_sent_concurrently_and_completely(sender, email_env):
    # Given ten queued emails and a Mandrill that takes 200 ms per call
    messages = [queued_message() for _ in range(10)]
    email_env.sandbox.faults(latency_ms=200)

    # When they arrive in one batch
    result = deliver(sender, email_env, *messages)

    # Then all are sent, several calls at a time

    assert result == {"batchItemFailures": []}
    for message in messages:
        assert len(email_env.sandbox.outbox(to=message["recipient"]["email"])) == 1
    assert email_env.sandbox.stats()["max_concurrent_requests"] > 1


def test_a_rejected_recipient_is_recorded_and_not_retried(sender, email_env):
    # Given a recipient on Mandrill's reject list
    message = queued_message()
    email_env.sandbox.transactional_sdk().rejects.add({"email": message["recipient"]["email"]})

    # When the sender processes the email
    result = deliver(sender, email_env, message)

    # Then Mandrill answered "rejected", the record is done (not a batch failure)...
    assert result == {"batchItemFailures": []}
    (attempt,) = email_env.sandbox.outbox(to=message["recipient"]["email"])
    assert attempt["status"] == "rejected"
    # ...and the outcome is remembered: a redelivery does not try again
    requests_before = email_env.sandbox.stats()["requests"]
    deliver(sender, email_env, message)
    assert email_env.sandbox.stats()["requests"] == requests_before
    (record,) = email_env.idempotency_records()
    assert json.loads(record["data"]["S"])["outcome"] == "rejected"


def test_an_unverified_sending_domain_is_a_permanent_rejection(sender, email_env, monkeypatch):
    monkeypatch.setenv("EMAIL_FROM_ADDRESS", "hello@unverified.example.net")
    function = load_function("email_sender")
    message = queued_message()

    result = deliver(function, email_env, message)

    assert result == {"batchItemFailures": []}
    (attempt,) = email_env.sandbox.outbox(to=message["recipient"]["email"])
    assert attempt["recipients"][0]["reject_reason"] == "unsigned"


def test_mandrill_5xx_fails_the_record_and_sends_nothing(sender, email_env):
    # Given Mandrill failing every call with 500 or 429
    email_env.sandbox.faults(error_rate=1.0, statuses=[500, 429])
    message = queued_message()

    # When the sender processes the email
    result = deliver(sender, email_env, message)

    # Then the record stays on the queue for a retry, and nothing was sent or remembered
    assert len(result["batchItemFailures"]) == 1
    assert email_env.sandbox.outbox(to=message["recipient"]["email"]) == []
    assert email_env.idempotency_records() == []


def test_a_failed_record_is_retried_later_and_then_sent_once(sender, email_env):
    # Given an email that failed on a Mandrill outage
    email_env.sandbox.faults(error_rate=1.0, statuses=[503])
    message = queued_message()
    deliver(sender, email_env, message)

    # When Mandrill is back and the message comes round again
    email_env.sandbox.faults()
    result = deliver(sender, email_env, message)

    # Then it is sent, once
    assert result == {"batchItemFailures": []}
    assert len(email_env.sandbox.outbox(to=message["recipient"]["email"])) == 1


def test_a_failed_record_is_hidden_for_a_backoff_delay(sender, email_env):
    # Given a retry base delay of 60 s and Mandrill down
    email_env.sandbox.faults(error_rate=1.0, statuses=[503])
    email_env.sqs.send_message(QueueUrl=email_env.email_queue_url, MessageBody=json.dumps(queued_message()))
    received = email_env.sqs.receive_message(QueueUrl=email_env.email_queue_url, VisibilityTimeout=0)["Messages"]

    # When the sender fails the record
    result = sender.lambda_handler(email_env.sqs_event(received), LambdaContext(timeout_seconds=30))

    # Then the message is not visible again right away (the queue's own timeout here is 0 s)
    assert len(result["batchItemFailures"]) == 1
    assert email_env.receive() == []


def test_an_unreadable_message_fails_its_record_only(sender, email_env):
    good = queued_message()
    received = [email_env.queue("{not json"), email_env.queue(good)]

    result = sender.lambda_handler(email_env.sqs_event(received), LambdaContext(timeout_seconds=30))

    assert [item["itemIdentifier"] for item in result["batchItemFailures"]] == [received[0]["MessageId"]]
    assert len(email_env.sandbox.outbox(to=good["recipient"]["email"])) == 1


def test_a_lost_answer_is_retried_through_the_queue_by_default(sender, email_env, monkeypatch):
    # Given Mandrill never answering within the read timeout
    monkeypatch.setenv("MAILCHIMP_READ_TIMEOUT_SECONDS", "0.5")
    function = load_function("email_sender")
    email_env.sandbox.faults(timeout_rate=1.0, timeout_seconds=2)

    # When the sender processes the email
    result = deliver(function, email_env, queued_message())

    # Then the record stays for a retry, and nothing is remembered that would block it
    assert len(result["batchItemFailures"]) == 1
    assert email_env.idempotency_records() == []


def test_a_lost_answer_is_recorded_as_uncertain_when_configured_to_skip(sender, email_env, monkeypatch):
    # Given Mandrill never answering within the read timeout, and the skip policy
    monkeypatch.setenv("MAILCHIMP_READ_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("EMAIL_ON_UNCERTAIN_SEND", "skip")
    function = load_function("email_sender")
    email_env.sandbox.faults(timeout_rate=1.0, timeout_seconds=2)
    message = queued_message()

    # When the sender processes the email
    result = deliver(function, email_env, message)

    # Then it is not retried (a resend could be a second email) and the outcome is remembered
    assert result == {"batchItemFailures": []}
    (record,) = email_env.idempotency_records()
    assert json.loads(record["data"]["S"])["outcome"] == "uncertain"


def test_no_send_starts_without_time_to_hear_the_answer(sender, email_env):
    # Given an invocation with only 3 seconds left
    received = email_env.queue(queued_message())

    # When the sender gets the record
    result = sender.lambda_handler(email_env.sqs_event([received]), LambdaContext(timeout_seconds=3))

    # Then it is left for a retry instead of being sent with an answer that could be cut off
    assert len(result["batchItemFailures"]) == 1
    assert email_env.sandbox.stats()["requests"] == 0


def test_a_mandrill_template_is_sent_with_send_template(sender, email_env, monkeypatch):
    # Given a flow mapped to a template stored in Mandrill
    email_env.sandbox.transactional_sdk().templates.add(
        {"name": "acme-welcome", "code": "<p>Hello *|FIRST_NAME|*</p>", "subject": "Hi from Acme", "publish": True}
    )
    monkeypatch.setenv(
        "EMAIL_FLOWS",
        json.dumps({"registration": {"mandrill_template": "acme-welcome", "merge_language": "mailchimp"}}),
    )
    function = load_function("email_sender")
    message = queued_message()

    # When the email is sent
    result = deliver(function, email_env, message)

    # Then Mandrill rendered its template with the person's name
    assert result == {"batchItemFailures": []}
    (sent,) = email_env.sandbox.outbox(to=message["recipient"]["email"])
    assert sent["api_call"] == "messages/send-template"
    assert sent["template_name"] == "acme-welcome"
    assert sent["html"] == "<p>Hello Katherine</p>"
    assert sent["subject"] == "Hi from Acme"


def test_an_unknown_mandrill_template_keeps_the_record_for_a_retry(sender, email_env, monkeypatch):
    monkeypatch.setenv("EMAIL_FLOWS", json.dumps({"registration": {"mandrill_template": "does-not-exist"}}))
    function = load_function("email_sender")

    result = deliver(function, email_env, queued_message())

    assert len(result["batchItemFailures"]) == 1
    assert email_env.idempotency_records() == []


def test_no_send_starts_without_time_for_its_whole_read_timeout(sender, email_env, monkeypatch):
    # Given a send that needs 7 s (0.5 s to connect, 5 s to read, 1.5 s margin) and an
    # invocation with 6.5 s left
    monkeypatch.setenv("MAILCHIMP_CONNECT_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("MAILCHIMP_READ_TIMEOUT_SECONDS", "5")
    function = load_function("email_sender")
    received = email_env.queue(queued_message())

    # When the sender gets the record
    result = function.lambda_handler(email_env.sqs_event([received]), LambdaContext(timeout_seconds=6.5))

    # Then it is deferred unsent, not sent with a wait the deadline would cut short
    assert len(result["batchItemFailures"]) == 1
    assert email_env.sandbox.stats()["requests"] == 0
    assert email_env.idempotency_records() == []


def test_a_slow_answer_within_the_read_timeout_is_heard_whatever_the_retry_budget(sender, email_env, monkeypatch):
    # Given Mandrill answering after 1.5 s, a 3 s read timeout and a 1 s retry budget
    monkeypatch.setenv("MAILCHIMP_CONNECT_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("MAILCHIMP_READ_TIMEOUT_SECONDS", "3")
    monkeypatch.setenv("MAILCHIMP_RETRY_BUDGET_SECONDS", "1")
    function = load_function("email_sender")
    email_env.sandbox.faults(latency_ms=1500)
    message = queued_message()

    # When the sender processes the email
    result = deliver(function, email_env, message)

    # Then the answer was waited for: the email is sent and known sent (never resent)
    assert result == {"batchItemFailures": []}
    assert len(email_env.sandbox.outbox(to=message["recipient"]["email"])) == 1
    (record,) = email_env.idempotency_records()
    assert json.loads(record["data"]["S"])["outcome"] == "sent"


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_error_is_a_lost_answer(sender, email_env, monkeypatch, status):
    # Given a gateway in front of Mandrill answering 502/504 (Mandrill may have sent the email),
    # and the policy of never sending twice
    monkeypatch.setenv("EMAIL_ON_UNCERTAIN_SEND", "skip")
    function = load_function("email_sender")
    email_env.sandbox.faults(error_rate=1.0, statuses=[status])

    # When the sender processes the email
    result = deliver(function, email_env, queued_message())

    # Then it is recorded as uncertain and not retried
    assert result == {"batchItemFailures": []}
    (record,) = email_env.idempotency_records()
    assert json.loads(record["data"]["S"])["outcome"] == "uncertain"


@pytest.mark.parametrize("status", [500, 503])
def test_mandrills_own_5xx_is_retried_even_when_lost_answers_are_skipped(sender, email_env, monkeypatch, status):
    # Given Mandrill itself answering 500/503 (nothing was sent) and the skip policy
    monkeypatch.setenv("EMAIL_ON_UNCERTAIN_SEND", "skip")
    function = load_function("email_sender")
    email_env.sandbox.faults(error_rate=1.0, statuses=[status])

    # When the sender processes the email
    result = deliver(function, email_env, queued_message())

    # Then it stays on the queue for a retry, and nothing is remembered that would block it
    assert len(result["batchItemFailures"]) == 1
    assert email_env.idempotency_records() == []


def test_a_name_with_markup_shows_as_text_in_a_mailchimp_language_template(sender, email_env, monkeypatch):
    # Given a Mandrill template in the mailchimp merge language (Mandrill does not escape
    # *|NAME|*) and a person who typed a link as their name
    email_env.sandbox.transactional_sdk().templates.add(
        {"name": "acme-hello", "code": "<p>Hello *|NAME|*</p>", "subject": "Hi", "publish": True}
    )
    monkeypatch.setenv(
        "EMAIL_FLOWS", json.dumps({"registration": {"mandrill_template": "acme-hello", "merge_language": "mailchimp"}})
    )
    function = load_function("email_sender")
    message = queued_message(recipient={"email": f"p-{new_id()[:8]}@example.com", "name": {"full": MARKUP_NAME}})

    # When the email is sent
    result = deliver(function, email_env, message)

    # Then the rendered email shows the name as text, with no link in it
    assert result == {"batchItemFailures": []}
    (sent,) = email_env.sandbox.outbox(to=message["recipient"]["email"])
    assert sent["html"] == f"<p>Hello {ESCAPED_NAME}</p>"
    assert "<a " not in sent["html"]


def test_a_name_with_markup_shows_as_text_in_the_bundle_template(sender, email_env):
    # Given a person who typed a link as their first name (the welcome template is handlebars)
    message = queued_message(recipient={"email": f"p-{new_id()[:8]}@example.com", "name": {"first": MARKUP_NAME}})

    # When the email is sent
    deliver(sender, email_env, message)

    # Then Mandrill's handlebars escaped it in the HTML part
    (sent,) = email_env.sandbox.outbox(to=message["recipient"]["email"])
    assert f"Hi {ESCAPED_NAME}," in sent["html"]
    assert "https://evil.example" not in sent["html"].replace(ESCAPED_NAME, "")


def test_sent_emails_are_remembered_under_the_senders_key_prefix(sender, email_env):
    # Given an email that was sent
    deliver(sender, email_env, queued_message())

    # Then its idempotency record is under the prefix the template's IAM condition allows
    (record,) = email_env.idempotency_records()
    assert record["id"]["S"].startswith(f"{email_sender.IDEMPOTENCY_KEY_PREFIX}#")


def test_a_message_being_sent_elsewhere_is_busy_and_not_sent_twice(email_env):
    # Given one email being sent by a first attempt that waits 1.5 s for Mandrill
    email_env.sandbox.faults(latency_ms=1500)
    message = EmailMessage.model_validate(queued_message())
    first = threading.Thread(target=email_sender.send, args=(message,))
    first.start()
    time.sleep(0.5)

    # When a second delivery of the same message arrives meanwhile
    with pytest.raises(Busy):
        email_sender.send(message)
    first.join()

    # Then it was told to come back later, and one email went out
    assert len(email_env.sandbox.outbox(to=message.recipient.email)) == 1
