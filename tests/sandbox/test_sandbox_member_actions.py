"""The control API's member actions (POST /_sandbox/members/{list_id}/{email}/actions): what a
subscriber or an admin does in Mailchimp, under the same member rules as the API, firing the
audience's webhooks with source user or admin."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import mailchimp_marketing
import pytest
import requests

from sandbox.mailchimp import DEFAULT_LIST_ID
from sandbox.mailchimp.client import SandboxClient
from tests.support.webhook_receiver import WebhookReceiver

Receiver = Callable[..., WebhookReceiver]


def member(marketing: mailchimp_marketing.Client, email: str, status: str = "subscribed", **body: Any) -> Any:
    return marketing.lists.set_list_member(
        DEFAULT_LIST_ID, email, {"email_address": email, "status_if_new": status, **body}
    )


def act(sandbox: SandboxClient, email: str, body: dict[str, Any], list_id: str = DEFAULT_LIST_ID) -> requests.Response:
    return requests.post(f"{sandbox.url}/_sandbox/members/{list_id}/{email}/actions", json=body, timeout=10)


def listen(marketing: mailchimp_marketing.Client, receiver: WebhookReceiver) -> None:
    marketing.lists.create_list_webhook(DEFAULT_LIST_ID, {"url": receiver.url})


def test_an_unsubscribe_by_the_person_carries_the_reason_and_campaign(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    email = unique_email("spam")
    member(marketing, email)
    receiver = webhook_receiver()
    listen(marketing, receiver)

    # When
    answer = sandbox.act_on_member(email, "unsubscribe", reason="abuse", campaign_id="cmp0000001")

    # Then
    [post] = receiver.posts()
    assert (post["type"], post["data[action]"], post["data[reason]"], post["data[campaign_id]"]) == (
        "unsubscribe",
        "unsub",
        "abuse",
        "cmp0000001",
    )
    assert answer["member"]["status"] == "unsubscribed"
    assert answer["webhooks_queued"] == 1
    assert marketing.lists.get_list_member(DEFAULT_LIST_ID, email)["status"] == "unsubscribed"


def test_a_clean_by_an_admin_carries_the_reason(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    email = unique_email("abuse")
    member(marketing, email)
    receiver = webhook_receiver()
    listen(marketing, receiver)

    # When
    sandbox.act_on_member(email, "clean", actor="admin", reason="abuse")

    # Then
    [post] = receiver.posts()
    assert (post["type"], post["data[reason]"], post["data[email]"]) == ("cleaned", "abuse", email)
    assert [delivery["source"] for delivery in sandbox.wait_for_deliveries()] == ["admin"]


def test_an_address_change_by_the_person_moves_the_member(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    old, new = unique_email("old"), unique_email("new")
    member(marketing, old, merge_fields={"FNAME": "Ann"})
    receiver = webhook_receiver()
    listen(marketing, receiver)

    # When
    sandbox.act_on_member(old, "change_email", new_email=new)

    # Then
    [post] = receiver.posts()
    assert (post["type"], post["data[old_email]"], post["data[new_email]"]) == ("upemail", old, new)
    moved = marketing.lists.get_list_member(DEFAULT_LIST_ID, new)
    assert moved["merge_fields"]["FNAME"] == "Ann"


def test_a_profile_edit_posts_the_new_merge_fields(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    email = unique_email("editor")
    member(marketing, email, merge_fields={"FNAME": "Old", "LNAME": "Name"})
    receiver = webhook_receiver()
    listen(marketing, receiver)

    # When
    sandbox.act_on_member(email, "update_profile", merge_fields={"FNAME": "New"})

    # Then
    [post] = receiver.posts()
    assert (post["type"], post["data[merges][FNAME]"], post["data[merges][LNAME]"]) == ("profile", "New", "Name")


@pytest.mark.parametrize(
    ("status", "action"),
    [("subscribed", "confirm"), ("pending", "unsubscribe"), ("unsubscribed", "unsubscribe"), ("cleaned", "clean")],
)
def test_an_action_that_does_not_fit_the_members_status_is_409_and_changes_nothing(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    unique_email: Callable[[str], str],
    status: str,
    action: str,
) -> None:
    # Given
    email = unique_email(status)
    member(marketing, email, status)

    # When
    response = act(sandbox, email, {"action": action})

    # Then
    assert response.status_code == 409
    assert status in response.json()["error"]
    assert marketing.lists.get_list_member(DEFAULT_LIST_ID, email)["status"] == status


def test_an_address_change_follows_the_apis_address_rules(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    email, taken = unique_email("mover"), unique_email("taken")
    member(marketing, email)
    member(marketing, taken)

    # When
    to_taken = act(sandbox, email, {"action": "change_email", "new_email": taken})
    to_fake = act(sandbox, email, {"action": "change_email", "new_email": "someone@example.com"})

    # Then
    assert (to_taken.status_code, to_taken.json()["title"]) == (400, "Member Exists")
    assert to_fake.status_code == 400
    assert "looks fake" in to_fake.json()["error"]
    assert marketing.lists.get_list_member(DEFAULT_LIST_ID, email)["email_address"] == email


def test_a_profile_edit_cannot_empty_a_required_merge_field(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    marketing.lists.add_list_merge_field(DEFAULT_LIST_ID, {"name": "Company", "type": "text", "required": True})
    email = unique_email("required")
    member(marketing, email, merge_fields={"COMPANY": "Acme"})

    # When
    response = act(sandbox, email, {"action": "update_profile", "merge_fields": {"COMPANY": ""}})

    # Then
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "COMPANY", "message": "Please enter a value"}]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"action": "dance"}, 400),
        ({"action": "unsubscribe", "reason": "bored"}, 400),
        ({"action": "confirm", "as": "robot"}, 400),
        ({"action": "change_email"}, 400),
        ({"action": "update_profile"}, 400),
    ],
)
def test_a_malformed_action_is_refused(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    unique_email: Callable[[str], str],
    body: dict[str, Any],
    status: int,
) -> None:
    # Given
    email = unique_email("malformed")
    member(marketing, email)

    # When
    response = act(sandbox, email, body)

    # Then
    assert response.status_code == status, response.text


def test_an_unknown_member_or_audience_is_404(sandbox: SandboxClient, unique_email: Callable[[str], str]) -> None:
    # When
    no_member = act(sandbox, unique_email("nobody"), {"action": "confirm"})
    no_audience = act(sandbox, unique_email("nobody"), {"action": "confirm"}, list_id="nosuchlist")

    # Then
    assert [no_member.status_code, no_audience.status_code] == [404, 404]


def test_the_member_may_be_named_by_its_subscriber_hash(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    pending = member(marketing, unique_email("hashed"), "pending")

    # When
    response = act(sandbox, pending["id"], {"action": "confirm"})

    # Then
    assert response.status_code == 200
    assert response.json()["member"]["status"] == "subscribed"


def test_actions_without_webhooks_queue_nothing(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    email = unique_email("quiet")
    member(marketing, email, "pending")

    # When
    answer = sandbox.act_on_member(email, "confirm")
    time.sleep(0.1)

    # Then
    assert answer["webhooks_queued"] == 0
    assert sandbox.webhook_deliveries() == []
