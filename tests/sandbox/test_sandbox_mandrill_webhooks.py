"""Mandrill's webhooks/add|list|info|update|delete against the sandbox: the spec's shapes, the
generated auth_key, and the check of a URL (HEAD, then a signed empty POST) before it is saved.
Receivers are local HTTP servers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import mailchimp_transactional
import pytest
from mailchimp_transactional.api_client import ApiClientError

from sandbox.mailchimp.client import SandboxClient
from tests.support.scripted_http import RESET, Answer
from tests.support.webhook_receiver import WebhookReceiver

Receiver = Callable[..., WebhookReceiver]
MESSAGE_EVENTS = ["send", "delivered", "hard_bounce", "soft_bounce", "open", "click", "spam", "unsub", "reject"]


def independent_signature(key: str, url: str, body: bytes) -> str:
    """Mandrill's recipe, written from its documentation: URL, then each POST key and value
    sorted by key, HMAC-SHA1 with the webhook key, base64."""
    params = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    signed = url + "".join(key_ + values[0] for key_, values in sorted(params.items()))
    return base64.b64encode(hmac.new(key.encode("utf-8"), signed.encode("utf-8"), hashlib.sha1).digest()).decode()


def add(transactional: mailchimp_transactional.Client, url: str, **body: Any) -> dict[str, Any]:
    return dict(transactional.webhooks.add({"url": url, "events": MESSAGE_EVENTS, **body}))


def error_of(call: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
    with pytest.raises(ApiClientError) as raised:
        call()
    return raised.value.status_code, dict(raised.value.text)


def test_add_checks_the_url_with_a_head_and_answers_the_webhook_with_its_key(
    transactional: mailchimp_transactional.Client, webhook_receiver: Receiver
) -> None:
    # Given
    receiver = webhook_receiver()

    # When
    webhook = add(transactional, receiver.url, description="tracking")

    # Then
    [head] = receiver.requests
    assert (head.method, head.headers["User-Agent"]) == ("HEAD", "Mandrill-Webhook/1.0")
    assert isinstance(webhook["id"], int)
    assert re.fullmatch(r"[A-Za-z0-9]{22}", webhook["auth_key"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+", webhook["created_at"])
    assert {name: webhook[name] for name in ("url", "description", "events", "batches_sent", "events_sent")} == {
        "url": receiver.url,
        "description": "tracking",
        "events": MESSAGE_EVENTS,
        "batches_sent": 0,
        "events_sent": 0,
    }
    assert (webhook["last_sent_at"], webhook["last_error"]) == (None, None)


def test_list_info_update_and_delete_round_trip(
    sandbox: SandboxClient, transactional: mailchimp_transactional.Client, webhook_receiver: Receiver
) -> None:
    # Given
    first, second = webhook_receiver(), webhook_receiver()
    webhook = add(transactional, first.url)

    # When
    listed = transactional.webhooks.list({})
    info = transactional.webhooks.info({"id": webhook["id"]})
    updated = transactional.webhooks.update(
        {"id": webhook["id"], "url": second.url, "events": ["hard_bounce"], "description": "moved"}
    )
    deleted = transactional.webhooks.delete({"id": webhook["id"]})

    # Then
    assert listed == [webhook]
    assert info == webhook
    assert (updated["url"], updated["events"], updated["description"]) == (second.url, ["hard_bounce"], "moved")
    assert updated["auth_key"] == webhook["auth_key"]
    assert [request.method for request in second.requests] == ["HEAD"]  # the new URL is checked too
    assert deleted == updated
    assert sandbox.mandrill_webhooks() == []  # (the SDK hands an empty list over as the raw response)
    status, body = error_of(lambda: transactional.webhooks.info({"id": webhook["id"]}))
    assert (status, body["name"], body["code"]) == (404, "Unknown_Webhook", 3)


def test_a_url_that_refuses_the_head_is_saved_when_it_accepts_the_signed_empty_post(
    transactional: mailchimp_transactional.Client, webhook_receiver: Receiver
) -> None:
    # Given a receiver that answers 405 to HEAD and 200 to POST
    receiver = webhook_receiver(Answer(405, body=b""), Answer(200, body=b""))

    # When
    webhook = add(transactional, receiver.url)

    # Then
    head, post = receiver.requests
    assert (head.method, post.method) == ("HEAD", "POST")
    assert parse_qs(post.body.decode()) == {"mandrill_events": ["[]"]}
    assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert post.headers["X-Mandrill-Signature"] == independent_signature("test-webhook", receiver.url, post.body)
    assert transactional.webhooks.list({}) == [webhook]


@pytest.mark.parametrize(
    "answers",
    [(Answer(404, body=b""),), (RESET,), (Answer(301, body=b"", headers={"Location": "http://example.net/"}),)],
    ids=["404", "connection reset", "redirect"],
)
def test_a_url_that_answers_neither_check_with_200_is_refused_and_nothing_is_saved(
    sandbox: SandboxClient,
    transactional: mailchimp_transactional.Client,
    webhook_receiver: Receiver,
    answers: tuple[Answer, ...],
) -> None:
    # Given
    receiver = webhook_receiver(*answers)

    # When
    status, body = error_of(lambda: add(transactional, receiver.url))

    # Then
    assert (status, body["status"], body["name"]) == (400, "error", "ValidationError")
    assert receiver.url in body["message"]
    assert sandbox.mandrill_webhooks() == []  # (the SDK hands an empty list over as the raw response)


def test_unknown_event_names_and_missing_urls_are_validation_errors(
    transactional: mailchimp_transactional.Client, webhook_receiver: Receiver
) -> None:
    # Given
    receiver = webhook_receiver()

    # When
    unknown = error_of(lambda: add(transactional, receiver.url, events=["send", "bounce"]))
    missing = error_of(lambda: transactional.webhooks.add({"events": ["send"]}))

    # Then
    assert [status for status, _ in (unknown, missing)] == [400, 400]
    assert "bounce" in unknown[1]["message"]
    assert receiver.requests == []  # refused before any check
