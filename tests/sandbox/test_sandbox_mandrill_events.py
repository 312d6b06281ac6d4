"""What reaches a Mandrill webhook after sends and control actions: signed batches of Mandrill's
event documents (send and delivered, the test addresses' bounces, spam and rejects, opens,
clicks, unsubscribes), batching up to 1,000 events, retries, and the webhook's counters.
Signatures are recomputed here with a second implementation. Receivers are local HTTP servers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import mailchimp_transactional
import pytest
import requests

from sandbox.mailchimp.client import SandboxClient
from tests.sandbox.test_sandbox_mandrill_webhooks import MESSAGE_EVENTS, independent_signature
from tests.support.scripted_http import Answer, Seen
from tests.support.webhook_receiver import WebhookReceiver

Receiver = Callable[..., WebhookReceiver]
TEST_DOMAIN = "test.mandrillapp.com"


@pytest.fixture(autouse=True)
def fast_batches(sandbox: SandboxClient) -> None:
    """Batches close after 50 ms and retries come within a fraction of a second (reset restores them)."""
    sandbox.webhook_settings(batch_seconds=0.05, retry_delays=[0.05, 0.1], retry_window_seconds=3, timeout_seconds=2)


def register(sandbox: SandboxClient, receiver: WebhookReceiver, events: list[str] = MESSAGE_EVENTS) -> dict[str, Any]:
    return sandbox.add_mandrill_webhook(receiver.url, events)


def send(transactional: mailchimp_transactional.Client, *addresses: str, **message: Any) -> list[dict[str, Any]]:
    body = {
        "from_email": "hello@example.org",
        "subject": "Grüße / welcome",
        "html": '<p>Hi <a href="https://example.org/start?a=1&b=2">start</a></p>',
        "to": [{"email": address} for address in addresses],
        "tags": ["welcome"],
        "metadata": {"identity_id": "id-1"},
        **message,
    }
    return list(transactional.messages.send({"message": body}))


def posts(receiver: WebhookReceiver, count: int = 1, timeout: float = 5.0) -> list[Seen]:
    receiver.posts(count, timeout)
    return [request for request in receiver.requests if request.method == "POST"]


def events_of(post: Seen) -> list[dict[str, Any]]:
    [value] = parse_qs(post.body.decode("utf-8"), keep_blank_values=True)["mandrill_events"]
    return list(json.loads(value))


def names(events: list[dict[str, Any]]) -> list[str]:
    return [event["event"] for event in events]


# -- sends --------------------------------------------------------------------------------
def test_a_send_posts_one_signed_batch_with_send_and_delivered(
    sandbox: SandboxClient,
    transactional: mailchimp_transactional.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    receiver = webhook_receiver()
    webhook = register(sandbox, receiver)
    email = unique_email("ann")

    # When
    [result] = send(transactional, email, recipient_metadata=[{"rcpt": email, "values": {"hook": "registration"}}])

    # Then
    [post] = posts(receiver)
    assert post.headers["X-Mandrill-Signature"] == independent_signature(webhook["auth_key"], receiver.url, post.body)
    assert post.headers["User-Agent"] == "Mandrill-Webhook/1.0"
    assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "\\/" in parse_qs(post.body.decode())["mandrill_events"][0]  # PHP-style JSON, as Mandrill writes it
    sent, delivered = events_of(post)
    assert (sent["event"], delivered["event"]) == ("send", "delivered")
    assert sent["_id"] == delivered["_id"] == result["_id"]
    assert isinstance(sent["ts"], int) and abs(sent["ts"] - time.time()) < 60
    msg = delivered["msg"]
    assert {name: msg[name] for name in ("_id", "email", "sender", "subject", "state", "tags", "metadata")} == {
        "_id": result["_id"],
        "email": email,
        "sender": "hello@example.org",
        "subject": "Grüße / welcome",
        "state": "sent",
        "tags": ["welcome"],
        "metadata": {"identity_id": "id-1", "hook": "registration"},
    }
    assert (msg["opens"], msg["clicks"], msg["resends"], msg["template"]) == ([], [], [], None)
    assert [smtp["type"] for smtp in msg["smtp_events"]] == ["sent"]
    assert msg["ts"] == sent["ts"] and len(msg["_version"]) > 0
    [delivery] = sandbox.wait_for_deliveries(kind="mandrill")
    assert (delivery["type"], delivery["events"], delivery["status"], delivery["attempts"]) == (
        "batch",
        ["send", "delivered"],
        "delivered",
        1,
    )
    info = transactional.webhooks.info({"id": webhook["id"]})
    assert (info["batches_sent"], info["events_sent"], info["last_error"]) == (1, 2, None)
    assert info["last_sent_at"] is not None


@pytest.mark.parametrize(
    ("local", "status", "events", "state"),
    [
        ("hard_bounce", "sent", ["send", "hard_bounce"], "bounced"),
        ("soft_bounce", "sent", ["send", "soft_bounce"], "soft-bounced"),
        ("spam", "sent", ["send", "delivered", "spam"], "sent"),
        ("reject", "rejected", ["reject"], "rejected"),
    ],
)
def test_mandrills_test_addresses_post_their_events(
    sandbox: SandboxClient,
    transactional: mailchimp_transactional.Client,
    webhook_receiver: Receiver,
    local: str,
    status: str,
    events: list[str],
    state: str,
) -> None:
    # Given
    receiver = webhook_receiver()
    register(sandbox, receiver)

    # When
    [result] = send(transactional, f"{local}@{TEST_DOMAIN}")

    # Then
    assert result["status"] == status
    batch = events_of(posts(receiver)[0])
    assert names(batch) == events
    assert batch[-1]["msg"]["state"] == state
    [message] = sandbox.outbox(to=f"{local}@{TEST_DOMAIN}")
    assert [event["event"] for event in message["recipients"][0]["events"]] == events


def test_a_hard_bounce_carries_the_bounce_details_and_puts_the_address_on_the_rejection_list(
    sandbox: SandboxClient, transactional: mailchimp_transactional.Client, webhook_receiver: Receiver
) -> None:
    # Given
    receiver = webhook_receiver()
    register(sandbox, receiver)
    address = f"hard_bounce@{TEST_DOMAIN}"
    send(transactional, address)
    bounce = events_of(posts(receiver)[0])[1]

    # When
    [again] = send(transactional, address)

    # Then
    assert bounce["msg"]["bounce_description"] == "bad_mailbox"
    assert bounce["msg"]["diag"].startswith("smtp;550 5.1.1")
    assert (again["status"], again["reject_reason"]) == ("rejected", "hard-bounce")
    assert names(events_of(posts(receiver, 2)[1])) == ["reject"]


def test_a_webhook_gets_only_the_events_it_asked_for(
    sandbox: SandboxClient,
    transactional: mailchimp_transactional.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    bounces, everything = webhook_receiver(), webhook_receiver()
    register(sandbox, bounces, ["hard_bounce"])
    register(sandbox, everything)

    # When
    send(transactional, unique_email("ok"), f"hard_bounce@{TEST_DOMAIN}")

    # Then
    assert names(events_of(posts(bounces)[0])) == ["hard_bounce"]
    assert sorted(names(events_of(posts(everything)[0]))) == ["delivered", "hard_bounce", "send", "send"]


def test_no_webhook_no_delivery_but_the_outbox_keeps_the_events(
    sandbox: SandboxClient, transactional: mailchimp_transactional.Client, unique_email: Callable[[str], str]
) -> None:
    # When
    email = unique_email("quiet")
    send(transactional, email)

    # Then
    [message] = sandbox.outbox(to=email)
    recipient = message["recipients"][0]
    assert (recipient["state"], [event["event"] for event in recipient["events"]]) == ("sent", ["send", "delivered"])
    assert sandbox.webhook_deliveries(kind="mandrill") == []


def test_rejection_list_changes_post_blacklist_sync_events_in_batches_of_their_own(
    sandbox: SandboxClient,
    transactional: mailchimp_transactional.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given a window long enough for three calls
    sandbox.webhook_settings(batch_seconds=1.0)
    receiver = webhook_receiver()
    register(sandbox, receiver, ["hard_bounce", "blacklist"])
    blocked = unique_email("blocked")

    # When an address is added and removed by hand, and another bounces hard
    transactional.rejects.add({"email": blocked, "comment": "asked us"})
    transactional.rejects.delete({"email": blocked})
    send(transactional, f"hard_bounce@{TEST_DOMAIN}")

    # Then
    batches = [events_of(post) for post in posts(receiver, 2)]
    [sync] = [batch for batch in batches if "type" in batch[0]]
    [message] = [batch for batch in batches if "event" in batch[0]]
    assert [(event["type"], event["action"], event["reject"]["email"]) for event in sync] == [
        ("blacklist", "add", blocked),
        ("blacklist", "remove", blocked),
        ("blacklist", "add", f"hard_bounce@{TEST_DOMAIN}"),
    ]
    assert [sync[0]["reject"]["reason"], sync[2]["reject"]["reason"]] == ["custom", "hard-bounce"]
    assert names(message) == ["hard_bounce"]


# -- batching and retries -----------------------------------------------------------------
def test_events_within_the_window_share_a_batch_of_at_most_1000(
    sandbox: SandboxClient,
    transactional: mailchimp_transactional.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given a window long enough for two calls
    sandbox.webhook_settings(batch_seconds=1.5)
    receiver = webhook_receiver()
    register(sandbox, receiver)

    # When 501 recipients (1,002 events) and then one more
    send(transactional, *[unique_email(f"r{number}") for number in range(501)])
    send(transactional, unique_email("late"))

    # Then
    batches = sorted((events_of(post) for post in posts(receiver, 2)), key=len, reverse=True)
    assert [len(batch) for batch in batches] == [1000, 4]
    deliveries = sandbox.wait_for_deliveries(2, kind="mandrill")
    assert sorted(len(delivery["events"]) for delivery in deliveries) == [4, 1000]
    full = max(deliveries, key=lambda delivery: len(delivery["events"]))
    assert full["body"].endswith("characters in all)")  # the log keeps the first 64 KiB
    assert sum(len(batch) for batch in batches) == 1004


def test_a_failed_batch_is_retried_with_the_same_events_and_the_error_is_kept(
    sandbox: SandboxClient,
    transactional: mailchimp_transactional.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given a receiver that accepts the HEAD, fails the first POST and accepts the second
    receiver = webhook_receiver(Answer(200, body=b""), Answer(500, body=b""), Answer(200, body=b""))
    webhook = register(sandbox, receiver)

    # When
    send(transactional, unique_email("retry"))

    # Then
    first, second = posts(receiver, 2)
    assert first.body == second.body
    assert second.headers["X-Mandrill-Signature"] == independent_signature(
        webhook["auth_key"], receiver.url, second.body
    )
    [delivery] = sandbox.wait_for_deliveries(kind="mandrill")
    assert (delivery["status"], delivery["attempts"], [h["answered"] for h in delivery["history"]]) == (
        "delivered",
        2,
        [500, 200],
    )
    info = transactional.webhooks.info({"id": webhook["id"]})
    assert (info["batches_sent"], info["events_sent"]) == (1, 2)
    assert "HTTP 500" in info["last_error"]


def test_a_deleted_webhook_gets_no_more_retries(
    sandbox: SandboxClient,
    transactional: mailchimp_transactional.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given a failing receiver and a slower retry
    sandbox.webhook_settings(retry_delays=[0.3])
    receiver = webhook_receiver(Answer(200, body=b""), Answer(503, body=b""))
    webhook = register(sandbox, receiver)
    send(transactional, unique_email("gone"))
    posts(receiver)

    # When
    transactional.webhooks.delete({"id": webhook["id"]})

    # Then
    [delivery] = sandbox.wait_for_deliveries(kind="mandrill", timeout=3)
    assert delivery["status"] == "failed"
    assert len(posts(receiver)) == 1


# -- control actions ----------------------------------------------------------------------
def test_open_click_and_unsub_post_their_events(
    sandbox: SandboxClient,
    transactional: mailchimp_transactional.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given a delivered message, and a window long enough for four control calls
    sandbox.webhook_settings(batch_seconds=1.0)
    receiver = webhook_receiver()
    register(sandbox, receiver, ["open", "click", "unsub"])
    email = unique_email("reader")
    [result] = send(transactional, email)

    # When
    opened = sandbox.message_event(result["_id"], "open")
    clicked = sandbox.message_event(result["_id"], "click", "https://example.org/account")
    default_click = sandbox.message_event(result["_id"], "click")
    unsubscribed = sandbox.message_event(result["_id"], "unsub")

    # Then
    assert [answer["webhooks_queued"] for answer in (opened, clicked, default_click, unsubscribed)] == [1, 1, 1, 1]
    batch = events_of(posts(receiver)[0])
    assert names(batch) == ["open", "click", "click", "unsub"]
    open_event, click, first_link_click, unsub = batch
    assert open_event["ip"] and open_event["user_agent"] and open_event["location"]["country_short"] == "US"
    assert (click["url"], first_link_click["url"]) == (
        "https://example.org/account",
        "https://example.org/start?a=1&b=2",
    )
    assert [entry["url"] for entry in unsub["msg"]["clicks"]] == [click["url"], first_link_click["url"]]
    assert len(unsub["msg"]["opens"]) == 1
    [again] = send(transactional, email)
    assert (again["status"], again["reject_reason"]) == ("rejected", "unsub")


@pytest.mark.parametrize(
    ("reference", "body", "status"),
    [
        ("unknown", {"event": "open"}, 404),
        ("rejected", {"event": "open"}, 409),
        ("sent", {"event": "bounce"}, 400),
        ("sent", {"event": "open", "extra": 1}, 400),
    ],
    ids=["unknown message", "rejected message", "unknown event", "unknown field"],
)
def test_control_events_that_do_not_fit_are_refused(
    sandbox: SandboxClient,
    transactional: mailchimp_transactional.Client,
    unique_email: Callable[[str], str],
    reference: str,
    body: dict[str, Any],
    status: int,
) -> None:
    # Given
    [sent] = send(transactional, unique_email("ok"))
    [rejected] = send(transactional, f"reject@{TEST_DOMAIN}")
    message_id = {"sent": sent["_id"], "rejected": rejected["_id"], "unknown": "0" * 32}[reference]

    # When
    answer = requests.post(f"{sandbox.url}/_sandbox/outbox/{message_id}/events", json=body, timeout=5)

    # Then
    assert answer.status_code == status, answer.text
    assert "error" in answer.json()


def test_the_test_delivery_posts_an_empty_list_signed_with_test_webhook(
    sandbox: SandboxClient, webhook_receiver: Receiver
) -> None:
    # Given
    receiver = webhook_receiver()
    webhook = register(sandbox, receiver)

    # When
    queued = sandbox.test_mandrill_webhook(webhook["id"])

    # Then
    [post] = posts(receiver)
    assert parse_qs(post.body.decode()) == {"mandrill_events": ["[]"]}
    assert post.headers["X-Mandrill-Signature"] == independent_signature("test-webhook", receiver.url, post.body)
    assert (queued["kind"], queued["type"]) == ("mandrill", "test")
    assert [delivery["status"] for delivery in sandbox.wait_for_deliveries(kind="mandrill", type="test")] == [
        "delivered"
    ]
