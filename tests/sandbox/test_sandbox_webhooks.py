"""Audience webhooks in the Marketing API (/lists/{list_id}/webhooks) through the official SDK:
create (after a validating GET to the URL), read, update, delete, and the refusals."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import mailchimp_marketing
import pytest
import requests
from mailchimp_marketing.api_client import ApiClientError

from sandbox.mailchimp import DEFAULT_LIST_ID
from sandbox.mailchimp.client import SandboxClient, sdk_error_body
from tests.support.scripted_http import Answer
from tests.support.webhook_receiver import WebhookReceiver

ALL_EVENTS = dict.fromkeys(("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign"), True)
ALL_SOURCES = {"user": True, "admin": True, "api": True}


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/nobody-listens"


def test_a_created_webhook_has_the_spec_shape_and_all_events_and_sources_by_default(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    # Given
    receiver = webhook_receiver()

    # When
    created = marketing.lists.create_list_webhook(DEFAULT_LIST_ID, {"url": receiver.url})

    # Then
    base = f"{sandbox.marketing_url}/lists/{DEFAULT_LIST_ID}/webhooks"
    assert created == {
        "id": created["id"],
        "url": receiver.url,
        "events": ALL_EVENTS,
        "sources": ALL_SOURCES,
        "list_id": DEFAULT_LIST_ID,
        "_links": [
            {"rel": "self", "href": f"{base}/{created['id']}", "method": "GET"},
            {"rel": "parent", "href": base, "method": "GET"},
            {"rel": "update", "href": f"{base}/{created['id']}", "method": "PATCH"},
            {"rel": "delete", "href": f"{base}/{created['id']}", "method": "DELETE"},
        ],
    }
    assert marketing.lists.get_list_webhook(DEFAULT_LIST_ID, created["id"]) == created
    listed = marketing.lists.get_list_webhooks(DEFAULT_LIST_ID)
    assert listed["webhooks"] == [created]
    assert listed["total_items"] == 1


def test_saving_a_webhook_gets_its_url_once_as_mailchimps_validator(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    # Given
    receiver = webhook_receiver()

    # When
    marketing.lists.create_list_webhook(DEFAULT_LIST_ID, {"url": receiver.url})

    # Then
    [validation] = receiver.requests
    assert validation.method == "GET"
    assert validation.path == "/hooks/mailchimp"
    assert validation.headers["User-Agent"] == "MailChimp.com WebHook Validator"


@pytest.mark.parametrize("answer", [Answer(404), Answer(410), Answer(500), Answer(301, headers={"Location": "/x"})])
def test_a_url_that_does_not_answer_200_is_refused_and_nothing_is_saved(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Callable[..., WebhookReceiver],
    answer: Answer,
) -> None:
    # Given
    receiver = webhook_receiver(answer)

    # When
    with pytest.raises(ApiClientError) as refused:
        marketing.lists.create_list_webhook(DEFAULT_LIST_ID, {"url": receiver.url})

    # Then
    body = sdk_error_body(refused.value)
    assert refused.value.status_code == 400
    assert body["title"] == "Invalid Resource"
    assert body["detail"].startswith("The resource submitted could not be validated.")
    assert body["errors"][0]["field"] == "url"
    assert f"answered {answer.status}" in body["errors"][0]["message"]
    assert marketing.lists.get_list_webhooks(DEFAULT_LIST_ID)["webhooks"] == []


def test_an_unreachable_url_is_refused(sandbox: SandboxClient, marketing: mailchimp_marketing.Client) -> None:
    # When
    with pytest.raises(ApiClientError) as refused:
        marketing.lists.create_list_webhook(DEFAULT_LIST_ID, {"url": closed_port_url()})

    # Then
    assert refused.value.status_code == 400
    assert "could not be reached" in sdk_error_body(refused.value)["errors"][0]["message"]


def test_a_slow_validating_get_holds_up_no_other_request(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    # Given a receiver that takes 0.6 s to answer the validating GET
    receiver = webhook_receiver(Answer(200, delay=0.6))
    saving = threading.Thread(target=marketing.lists.create_list_webhook, args=(DEFAULT_LIST_ID, {"url": receiver.url}))
    saving.start()
    time.sleep(0.1)

    # When
    started = time.monotonic()
    marketing.lists.get_list(DEFAULT_LIST_ID)
    took = time.monotonic() - started
    saving.join()

    # Then
    assert took < 0.3
    assert len(marketing.lists.get_list_webhooks(DEFAULT_LIST_ID)["webhooks"]) == 1


def test_given_events_and_sources_are_kept_and_the_others_are_off(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    # Given
    receiver = webhook_receiver()

    # When
    created = marketing.lists.create_list_webhook(
        DEFAULT_LIST_ID,
        {"url": receiver.url, "events": {"unsubscribe": True, "upemail": True}, "sources": {"user": True}},
    )

    # Then
    assert created["events"] == {**dict.fromkeys(ALL_EVENTS, False), "unsubscribe": True, "upemail": True}
    assert created["sources"] == {"user": True, "admin": False, "api": False}


def test_an_update_changes_only_what_it_names(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    # Given
    receiver = webhook_receiver()
    created = marketing.lists.create_list_webhook(DEFAULT_LIST_ID, {"url": receiver.url})

    # When
    updated = marketing.lists.update_list_webhook(
        DEFAULT_LIST_ID, created["id"], {"events": {"campaign": False}, "sources": {"api": False}}
    )

    # Then
    assert updated["events"] == {**ALL_EVENTS, "campaign": False}
    assert updated["sources"] == {**ALL_SOURCES, "api": False}
    assert updated["url"] == receiver.url
    assert [request.method for request in receiver.requests] == ["GET"]  # no new validation


def test_a_new_url_is_validated_and_a_failing_one_leaves_the_webhook_as_it_was(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    # Given
    first, second, broken = webhook_receiver(), webhook_receiver(), webhook_receiver(Answer(404))
    created = marketing.lists.create_list_webhook(DEFAULT_LIST_ID, {"url": first.url})

    # When
    moved = marketing.lists.update_list_webhook(DEFAULT_LIST_ID, created["id"], {"url": second.url})
    with pytest.raises(ApiClientError) as refused:
        marketing.lists.update_list_webhook(DEFAULT_LIST_ID, created["id"], {"url": broken.url})

    # Then
    assert moved["url"] == second.url
    assert [request.method for request in second.requests] == ["GET"]
    assert refused.value.status_code == 400
    assert marketing.lists.get_list_webhook(DEFAULT_LIST_ID, created["id"])["url"] == second.url


def test_a_deleted_webhook_is_gone(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    # Given
    created = marketing.lists.create_list_webhook(DEFAULT_LIST_ID, {"url": webhook_receiver().url})

    # When
    marketing.lists.delete_list_webhook(DEFAULT_LIST_ID, created["id"])

    # Then
    with pytest.raises(ApiClientError) as missing:
        marketing.lists.get_list_webhook(DEFAULT_LIST_ID, created["id"])
    assert missing.value.status_code == 404
    assert marketing.lists.get_list_webhooks(DEFAULT_LIST_ID)["total_items"] == 0


def test_the_same_url_twice_on_one_audience_is_refused(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    # Given
    receiver = webhook_receiver()
    marketing.lists.create_list_webhook(DEFAULT_LIST_ID, {"url": receiver.url})

    # When
    with pytest.raises(ApiClientError) as refused:
        marketing.lists.create_list_webhook(DEFAULT_LIST_ID, {"url": receiver.url})

    # Then
    assert refused.value.status_code == 400
    assert sdk_error_body(refused.value)["errors"][0]["field"] == "url"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": "ftp://example.net/hook"}, "url"),
        ({"url": "http://127.0.0.1:9/x", "events": {"subscribe": "yes"}}, "events.subscribe"),
        ({"url": "http://127.0.0.1:9/x", "sources": ["user"]}, "sources"),
    ],
)
def test_a_malformed_body_is_refused_before_any_request(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, body: dict[str, object], field: str
) -> None:
    # When
    with pytest.raises(ApiClientError) as refused:
        marketing.lists.create_list_webhook(DEFAULT_LIST_ID, body)

    # Then
    assert refused.value.status_code == 400
    assert sdk_error_body(refused.value)["errors"][0]["field"] == field


def test_webhooks_of_an_unknown_audience_are_404(sandbox: SandboxClient) -> None:
    # When
    response = requests.get(
        f"{sandbox.marketing_url}/lists/nosuchlist/webhooks", auth=("user", sandbox.marketing_api_key), timeout=10
    )

    # Then
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")


def test_the_signing_secret_is_accepted_but_never_shown(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, webhook_receiver: Callable[..., WebhookReceiver]
) -> None:
    # When
    created = marketing.lists.create_list_webhook(DEFAULT_LIST_ID, {"url": webhook_receiver().url, "secret": "k1"})

    # Then
    assert "secret" not in created
    [control] = sandbox.webhooks()
    assert control["signed"] is True
    assert control["enabled"] is True
    assert "k1" not in str(control)
