"""The Mandrill events worker: queued slices from the receiver (the real handler), processed by
the real worker with AWS on moto; what the bus published is read back through a capture rule.
The email sender's suppression runs against the Mailchimp sandbox."""

from __future__ import annotations

import json
from typing import Any

import boto3
import jsonschema
import pytest

from chimpbridge.dal.email_records import address_hash
from chimpbridge.models.mandrill_events import DETAIL_TYPES
from tests.support.aws import REGION
from tests.support.functions import LambdaContext, event, load_function
from tests.support.mandrill import SCHEMAS, forget, message_event, ours, signed_delivery
from tests.support.registration import new_id, queued_email


@pytest.fixture
def receiver(mandrill_env):
    return load_function("mandrill_webhook")


@pytest.fixture
def worker(mandrill_env):
    return load_function("mandrill_events")


def deliver(receiver, worker, mandrill_env, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Mandrill posts ``events``; the worker gets what the receiver queued."""
    response = receiver.lambda_handler(signed_delivery(events), LambdaContext(timeout_seconds=10))
    assert response["statusCode"] == 200, response["body"]
    messages = mandrill_env.queued()
    return worker.lambda_handler(mandrill_env.sqs_event(messages), LambdaContext(timeout_seconds=60))


def schema_for(detail_type: str) -> dict[str, Any]:
    for path in SCHEMAS.glob("email-*.schema.json"):
        schema = json.loads(path.read_text())
        if schema["x-detail-type"] == detail_type:
            return schema
    raise AssertionError(f"no schema for {detail_type}")


def state_of(mandrill_env, metadata: dict[str, str]) -> dict[str, Any]:
    items = mandrill_env.items(f"email#{metadata['identity_id']}")
    (state,) = [item for item in items if item["sk"]["S"] == metadata["idempotency_key"]]
    return state


def history_of(mandrill_env, metadata: dict[str, str]) -> list[str]:
    items = mandrill_env.items(f"email#{metadata['identity_id']}")
    return [item["event"]["S"] for item in items if "#event#" in item["sk"]["S"]]


def suppression(mandrill_env, email: str) -> dict[str, Any] | None:
    items = mandrill_env.items(f"suppression#{address_hash(email)}")
    return items[0] if items else None


# ---------------------------------------------------------------- publishing and records
def test_a_hard_bounce_is_published_recorded_and_suppresses_the_address(receiver, worker, mandrill_env):
    # Given our welcome email to an address, sent and then bounced
    metadata = ours()
    email = f"Person-{new_id()[:8]}@Example.com"
    events = [
        message_event(
            "send", email=email, message_id="m1" + metadata["identity_id"][:8], metadata=metadata, ts=1767225600
        ),
        message_event(
            "hard_bounce", email=email, message_id="m1" + metadata["identity_id"][:8], metadata=metadata, ts=1767225600
        ),
    ]

    # When Mandrill delivers the batch and the worker processes it
    result = deliver(receiver, worker, mandrill_env, events)

    # Then both events are on the bus, normalised
    assert result == {"batchItemFailures": []}
    published = {item["detail-type"]: item for item in mandrill_env.published()}
    assert set(published) == {"Email Sent", "Email Bounced"}
    bounce = published["Email Bounced"]
    assert bounce["source"] == "chimpbridge.mandrill"
    assert bounce["detail"]["reject_reason"] == "bad_mailbox"
    assert bounce["detail"]["diagnostic"].startswith("smtp;550 5.1.1")
    assert bounce["detail"]["identity_id"] == metadata["identity_id"]
    assert bounce["detail"]["timestamp"] == "2026-01-01T00:00:00Z"
    # And the email record shows bounced, with its history
    state = state_of(mandrill_env, metadata)
    assert state["state"]["S"] == "bounced" and state["hook"]["S"] == "registration"
    assert sorted(history_of(mandrill_env, metadata)) == ["hard_bounce", "send"]
    # And the address is suppressed, keyed by the hash of the lowercased address, never in clear
    assert suppression(mandrill_env, email.lower())["reason"]["S"] == "hard_bounce"
    assert email.lower() not in json.dumps(mandrill_env.table_items()).lower()


@pytest.mark.parametrize("kind", sorted(k for k in DETAIL_TYPES if k not in ("blacklist", "whitelist")))
def test_each_message_event_is_published_with_a_valid_detail(receiver, worker, mandrill_env, kind):
    deliver(receiver, worker, mandrill_env, [message_event(kind, metadata=ours())])

    (published,) = mandrill_env.published()
    assert published["detail-type"] == DETAIL_TYPES[kind]
    jsonschema.Draft202012Validator(
        schema_for(published["detail-type"]), format_checker=jsonschema.FormatChecker()
    ).validate(published["detail"])


def test_a_click_carries_the_link_and_the_user_agent(receiver, worker, mandrill_env):
    deliver(receiver, worker, mandrill_env, [message_event("click", metadata=ours())])

    (published,) = mandrill_env.published()
    assert published["detail"]["url"] == "https://example.org/start?from=welcome"
    assert published["detail"]["user_agent"] == "Mozilla/5.0 (Macintosh)"
    assert published["detail"]["ip"] == "203.0.113.10"


def test_the_same_batch_delivered_twice_changes_nothing_the_second_time(receiver, worker, mandrill_env):
    # Given a batch that was processed
    metadata = ours()
    events = [
        message_event(kind, message_id="m-" + metadata["identity_id"], metadata=metadata)
        for kind in ("send", "delivered", "spam")
    ]
    deliver(receiver, worker, mandrill_env, events)
    first_published = mandrill_env.published()
    items_before = sorted(json.dumps(item, sort_keys=True) for item in mandrill_env.table_items())

    # When Mandrill delivers it again
    result = deliver(receiver, worker, mandrill_env, events)

    # Then nothing more is published and no item changed
    assert result == {"batchItemFailures": []}
    assert len(first_published) == 3
    assert mandrill_env.published() == []
    assert sorted(json.dumps(item, sort_keys=True) for item in mandrill_env.table_items()) == items_before


def test_a_later_state_is_kept_whatever_order_the_events_arrive_in(receiver, worker, mandrill_env):
    # Given a bounce delivered before the send of the same second, then an older delivery
    metadata = ours()
    message_id = "m-" + metadata["identity_id"]
    deliver(
        receiver,
        worker,
        mandrill_env,
        [message_event("hard_bounce", message_id=message_id, metadata=metadata, ts=1767225600)],
    )
    deliver(
        receiver, worker, mandrill_env, [message_event("send", message_id=message_id, metadata=metadata, ts=1767225600)]
    )
    deliver(
        receiver,
        worker,
        mandrill_env,
        [message_event("deferral", message_id=message_id, metadata=metadata, ts=1767225500)],
    )

    # Then the record still says bounced, and the history has all three
    assert state_of(mandrill_env, metadata)["state"]["S"] == "bounced"
    assert sorted(history_of(mandrill_env, metadata)) == ["deferral", "hard_bounce", "send"]


def test_events_of_emails_we_did_not_send_are_published_but_not_recorded(receiver, worker, mandrill_env):
    deliver(receiver, worker, mandrill_env, [message_event("delivered")])

    assert len(mandrill_env.published()) == 1
    assert not [item for item in mandrill_env.table_items() if item["pk"]["S"].startswith("email#")]


@pytest.mark.parametrize(("kind", "reason"), [("spam", "spam"), ("unsub", "unsub")])
def test_a_complaint_or_an_unsubscribe_suppresses_the_address(receiver, worker, mandrill_env, kind, reason):
    email = f"person-{new_id()[:8]}@example.com"

    deliver(receiver, worker, mandrill_env, [message_event(kind, email=email, metadata=ours())])

    assert suppression(mandrill_env, email)["reason"]["S"] == reason


@pytest.mark.parametrize("kind", ["soft_bounce", "deferral", "delivered", "open", "click", "reject"])
def test_other_events_suppress_nothing(receiver, worker, mandrill_env, kind):
    email = f"person-{new_id()[:8]}@example.com"

    deliver(receiver, worker, mandrill_env, [message_event(kind, email=email, metadata=ours())])

    assert suppression(mandrill_env, email) is None


def test_an_address_added_to_mandrills_denylist_is_suppressed(receiver, worker, mandrill_env):
    # Given Mandrill's sync event: an address added to its rejection list
    email = f"person-{new_id()[:8]}@example.com"
    sync = {
        "type": "blacklist",
        "action": "add",
        "reject": {"reason": "hard-bounce", "detail": "bounced", "email": email, "created_at": "2026-01-01 00:00:00"},
        "ts": 1767225600,
    }

    deliver(receiver, worker, mandrill_env, [sync])

    (published,) = mandrill_env.published()
    assert published["detail-type"] == "Email Denylist Changed"
    assert published["detail"]["action"] == "add" and published["detail"]["email"] == email
    jsonschema.Draft202012Validator(schema_for(published["detail-type"])).validate(published["detail"])
    assert suppression(mandrill_env, email)["reason"]["S"] == "denylist:hard-bounce"


def test_an_event_we_do_not_know_is_ignored_and_the_rest_processed(receiver, worker, mandrill_env):
    result = deliver(receiver, worker, mandrill_env, [{"event": "inbound", "ts": 1767225600}, message_event("open")])

    assert result == {"batchItemFailures": []}
    assert [item["detail-type"] for item in mandrill_env.published()] == ["Email Opened"]


def test_the_committed_sample_is_processed(worker, mandrill_env):
    result = worker.lambda_handler(event("mandrill_events/hard-bounce.json"), LambdaContext(timeout_seconds=60))

    assert result == {"batchItemFailures": []}
    assert sorted(item["detail-type"] for item in mandrill_env.published()) == ["Email Bounced", "Email Sent"]


def test_a_full_batch_is_processed_completely(receiver, mandrill_env, monkeypatch):
    # Given a bus without rules (moto's SQS slows down with every message a capture queue holds)
    quiet_bus = f"quiet-{new_id()}"
    boto3.client("events", endpoint_url=mandrill_env.endpoint, region_name=REGION).create_event_bus(Name=quiet_bus)
    monkeypatch.setenv("EVENT_BUS_NAME", quiet_bus)
    forget()
    worker = load_function("mandrill_events")
    # And 1,000 events about 500 of our emails
    events = []
    for _ in range(500):
        metadata = ours()
        message_id = "m-" + metadata["identity_id"]
        events += [message_event(kind, message_id=message_id, metadata=metadata) for kind in ("send", "delivered")]

    result = deliver(receiver, worker, mandrill_env, events)

    assert result == {"batchItemFailures": []}
    processed = [item for item in mandrill_env.table_items() if item["pk"]["S"].startswith("mandrill-event#")]
    assert len(processed) == 1000
    states = [
        item
        for item in mandrill_env.table_items()
        if item["pk"]["S"].startswith("email#") and "#event#" not in item["sk"]["S"]
    ]
    assert len(states) == 500 and {item["state"]["S"] for item in states} == {"delivered"}


# ---------------------------------------------------------------- the email sender and suppression
def sender_message(email: str) -> dict[str, Any]:
    return queued_email({"first": "Ada"}, to=email)


def send(email_env, message: dict[str, Any]) -> dict[str, Any]:
    sender = load_function("email_sender")
    received = email_env.queue(message)
    return sender.lambda_handler(email_env.sqs_event([received]), LambdaContext(timeout_seconds=30))


def test_the_sender_skips_a_suppressed_address_without_retrying(email_env, mandrill_env, receiver, worker):
    # Given an address that bounced hard
    email = f"person-{new_id()[:8]}@example.com"
    deliver(receiver, worker, mandrill_env, [message_event("hard_bounce", email=email, metadata=ours())])

    # When a welcome email to it (written in capitals) is queued
    result = send(email_env, sender_message(email.upper()))

    # Then the record succeeds (no retry) and nothing reached Mandrill
    assert result == {"batchItemFailures": []}
    assert email_env.sandbox.outbox(to=email.upper()) == [] and email_env.sandbox.outbox(to=email) == []


def test_an_address_mandrill_rejects_is_suppressed_for_the_next_email(email_env, mandrill_env):
    # Given Mandrill's test address that is on its rejection list
    email = "reject@test.mandrillapp.com"
    before = len(email_env.sandbox.outbox(to=email))

    # When two different emails are queued to it, one after the other
    send(email_env, sender_message(email))
    send(email_env, sender_message(email))

    # Then only the first reached Mandrill (and was rejected); the address is suppressed
    assert len(email_env.sandbox.outbox(to=email)) == before + 1
    assert suppression(mandrill_env, email)["reason"]["S"] == "reject:custom"


def test_an_address_that_is_not_suppressed_is_sent_to(email_env, mandrill_env):
    email = f"person-{new_id()[:8]}@example.com"

    assert send(email_env, sender_message(email)) == {"batchItemFailures": []}
    assert len(email_env.sandbox.outbox(to=email)) == 1
