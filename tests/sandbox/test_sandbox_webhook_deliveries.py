"""What reaches an audience webhook's URL: the exact form payload of each event, filtering by
event and source, signatures, retries, 410 and timeouts. Receivers are local HTTP servers."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from typing import Any

import mailchimp_marketing
import pytest

from sandbox.mailchimp import DEFAULT_LIST_ID
from sandbox.mailchimp.client import SandboxClient
from tests.support.scripted_http import RESET, Answer
from tests.support.webhook_receiver import WebhookReceiver

FIRED_AT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
Receiver = Callable[..., WebhookReceiver]


@pytest.fixture(autouse=True)
def fast_retries(sandbox: SandboxClient) -> None:
    """Retries within a fraction of a second (reset restores the defaults)."""
    sandbox.webhook_settings(retry_delays=[0.05, 0.1], retry_window_seconds=3, timeout_seconds=2)


def register(marketing: mailchimp_marketing.Client, receiver: WebhookReceiver, **body: Any) -> dict[str, Any]:
    return dict(marketing.lists.create_list_webhook(DEFAULT_LIST_ID, {"url": receiver.url, **body}))


def subscribe(marketing: mailchimp_marketing.Client, email: str, status: str = "subscribed", **body: Any) -> Any:
    return marketing.lists.set_list_member(
        DEFAULT_LIST_ID, email, {"email_address": email, "status_if_new": status, **body}
    )


def without_fired_at(fields: dict[str, str]) -> dict[str, str]:
    assert FIRED_AT.match(fields["fired_at"]), fields["fired_at"]
    return {name: value for name, value in fields.items() if name != "fired_at"}


def member_fields(member: dict[str, Any], fname: str = "", lname: str = "") -> dict[str, str]:
    return {
        "data[id]": member["id"],
        "data[email]": member["email_address"],
        "data[email_type]": "html",
        "data[ip_opt]": member["ip_opt"],
        "data[web_id]": str(member["web_id"]),
        "data[merges][EMAIL]": member["email_address"],
        "data[merges][FNAME]": fname,
        "data[merges][LNAME]": lname,
        "data[list_id]": DEFAULT_LIST_ID,
    }


# -- payloads ------------------------------------------------------------------------------
def test_an_api_subscribe_posts_the_subscribe_form(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    receiver = webhook_receiver()
    register(marketing, receiver)

    # When
    member = subscribe(marketing, unique_email("ann"), merge_fields={"FNAME": "Ann", "LNAME": "Lee"})

    # Then
    [post] = receiver.posts()
    assert without_fired_at(post) == {"type": "subscribe", **member_fields(member, "Ann", "Lee")}
    [seen] = [request for request in receiver.requests if request.method == "POST"]
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen.headers["User-Agent"] == "MailChimp.com"
    assert "X-Mailchimp-Signature" not in seen.headers
    [delivery] = sandbox.wait_for_deliveries()
    assert delivery["type"] == "subscribe"
    assert delivery["source"] == "api"
    assert (delivery["status"], delivery["attempts"], delivery["answered"]) == ("delivered", 1, 200)


def test_a_pending_signup_fires_nothing_until_the_person_confirms(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    receiver = webhook_receiver()
    register(marketing, receiver)
    email = unique_email("pending")
    subscribe(marketing, email, "pending", merge_fields={"FNAME": "Pat"})

    # When
    confirmed = sandbox.act_on_member(email, "confirm", ip="203.0.113.7")["member"]

    # Then
    [post] = receiver.posts()
    assert without_fired_at(post) == {"type": "subscribe", **member_fields(confirmed, "Pat")}
    assert post["data[ip_opt]"] == "203.0.113.7"
    assert [delivery["source"] for delivery in sandbox.wait_for_deliveries()] == ["user"]


def test_an_api_unsubscribe_posts_action_unsub_and_reason_manual(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    email = unique_email("leaver")
    subscribe(marketing, email, merge_fields={"FNAME": "Lee"})
    receiver = webhook_receiver()
    register(marketing, receiver)

    # When
    member = marketing.lists.update_list_member(DEFAULT_LIST_ID, email, {"status": "unsubscribed"})

    # Then
    [post] = receiver.posts()
    assert without_fired_at(post) == {
        "type": "unsubscribe",
        "data[action]": "unsub",
        "data[reason]": "manual",
        **member_fields(member, "Lee"),
        "data[campaign_id]": "",
    }


def test_archiving_a_subscriber_posts_action_delete(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    email = unique_email("archived")
    member = subscribe(marketing, email)
    receiver = webhook_receiver()
    register(marketing, receiver)

    # When
    marketing.lists.delete_list_member(DEFAULT_LIST_ID, email)

    # Then
    [post] = receiver.posts()
    assert (post["type"], post["data[action]"], post["data[id]"]) == ("unsubscribe", "delete", member["id"])


def test_a_merge_field_change_posts_the_profile_form_with_the_new_values(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    email = unique_email("profile")
    subscribe(marketing, email, merge_fields={"FNAME": "Old"})
    receiver = webhook_receiver()
    register(marketing, receiver)

    # When
    member = marketing.lists.update_list_member(DEFAULT_LIST_ID, email, {"merge_fields": {"FNAME": "New"}})
    marketing.lists.update_list_member(DEFAULT_LIST_ID, email, {"merge_fields": {"FNAME": "New"}})  # no change

    # Then
    [post] = receiver.posts()
    assert without_fired_at(post) == {"type": "profile", **member_fields(member, "New")}
    time.sleep(0.2)
    assert len(receiver.posts()) == 1


def test_an_address_change_posts_upemail_with_both_addresses(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    old, new = unique_email("old"), unique_email("new")
    subscribe(marketing, old)
    receiver = webhook_receiver()
    register(marketing, receiver)

    # When
    member = marketing.lists.update_list_member(DEFAULT_LIST_ID, old, {"email_address": new})

    # Then
    [post] = receiver.posts()
    assert without_fired_at(post) == {
        "type": "upemail",
        "data[list_id]": DEFAULT_LIST_ID,
        "data[new_id]": member["id"],
        "data[new_email]": new,
        "data[old_email]": old,
    }
    assert member["id"] == hashlib.md5(new.encode()).hexdigest()


def test_a_cleaned_member_posts_the_cleaned_form(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    email = unique_email("bouncy")
    subscribe(marketing, email)
    receiver = webhook_receiver()
    register(marketing, receiver)

    # When
    marketing.lists.update_list_member(DEFAULT_LIST_ID, email, {"status": "cleaned"})

    # Then
    [post] = receiver.posts()
    assert without_fired_at(post) == {
        "type": "cleaned",
        "data[list_id]": DEFAULT_LIST_ID,
        "data[campaign_id]": "",
        "data[reason]": "hard",
        "data[email]": email,
    }


def test_a_campaign_posts_the_campaign_form_whatever_the_sources(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, webhook_receiver: Receiver
) -> None:
    # Given a webhook that listens to no source at all
    receiver = webhook_receiver()
    register(marketing, receiver, sources={"user": False, "admin": False, "api": False})

    # When
    sandbox.send_campaign(subject="Spring news", campaign_id="c0ffee1234")

    # Then
    [post] = receiver.posts()
    assert without_fired_at(post) == {
        "type": "campaign",
        "data[id]": "c0ffee1234",
        "data[subject]": "Spring news",
        "data[status]": "sent",
        "data[reason]": "",
        "data[list_id]": DEFAULT_LIST_ID,
    }


def test_an_address_merge_field_is_posted_with_nested_keys(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    marketing.lists.add_list_merge_field(DEFAULT_LIST_ID, {"name": "Address", "tag": "ADDRESS", "type": "address"})
    receiver = webhook_receiver()
    register(marketing, receiver)
    address = {"addr1": "1 Main St", "addr2": "", "city": "Springfield", "state": "IL", "zip": "62701", "country": "US"}

    # When
    subscribe(marketing, unique_email("addr"), merge_fields={"ADDRESS": address})

    # Then
    [post] = receiver.posts()
    assert {name: value for name, value in post.items() if "[ADDRESS]" in name} == {
        f"data[merges][ADDRESS][{key}]": value for key, value in address.items()
    }


def test_interests_are_posted_as_interests_and_groupings(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given two interest categories and a member who chose one interest in each
    topics = marketing.lists.create_list_interest_category(DEFAULT_LIST_ID, {"title": "Topics", "type": "checkboxes"})
    news = marketing.lists.create_interest_category_interest(DEFAULT_LIST_ID, topics["id"], {"name": "News"})
    marketing.lists.create_interest_category_interest(DEFAULT_LIST_ID, topics["id"], {"name": "Events"})
    often = marketing.lists.create_list_interest_category(DEFAULT_LIST_ID, {"title": "How often?", "type": "radio"})
    weekly = marketing.lists.create_interest_category_interest(DEFAULT_LIST_ID, often["id"], {"name": "Weekly"})
    receiver = webhook_receiver()
    register(marketing, receiver)

    # When
    subscribe(marketing, unique_email("groups"), interests={news["id"]: True, weekly["id"]: True})

    # Then
    [post] = receiver.posts()
    assert {name: value for name, value in post.items() if "INTERESTS" in name or "GROUPINGS" in name} == {
        "data[merges][INTERESTS]": "News",
        "data[merges][GROUPINGS][0][id]": "5001",
        "data[merges][GROUPINGS][0][unique_id]": topics["id"],
        "data[merges][GROUPINGS][0][name]": "Topics",
        "data[merges][GROUPINGS][0][groups]": "News",
        "data[merges][GROUPINGS][1][id]": "5002",
        "data[merges][GROUPINGS][1][unique_id]": often["id"],
        "data[merges][GROUPINGS][1][name]": "How often?",
        "data[merges][GROUPINGS][1][groups]": "Weekly",
    }
    names = list(post)
    assert names.index("data[merges][LNAME]") < names.index("data[merges][INTERESTS]") < names.index("data[list_id]")


def test_a_change_of_interests_posts_a_profile_update(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    topics = marketing.lists.create_list_interest_category(DEFAULT_LIST_ID, {"title": "Topics", "type": "checkboxes"})
    news = marketing.lists.create_interest_category_interest(DEFAULT_LIST_ID, topics["id"], {"name": "News"})
    events = marketing.lists.create_interest_category_interest(DEFAULT_LIST_ID, topics["id"], {"name": "Events"})
    email = unique_email("regroup")
    subscribe(marketing, email, interests={news["id"]: True})
    receiver = webhook_receiver()
    register(marketing, receiver)

    # When
    sandbox.act_on_member(email, "update_profile", interests={events["id"]: True})

    # Then
    [post] = receiver.posts()
    assert (post["type"], post["data[merges][GROUPINGS][0][groups]"]) == ("profile", "News, Events")


def test_a_batch_subscribe_posts_one_subscribe_per_new_subscriber(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    receiver = webhook_receiver()
    register(marketing, receiver)
    emails = [unique_email("batch") for _ in range(3)]

    # When
    marketing.lists.batch_list_members(
        DEFAULT_LIST_ID,
        {"members": [{"email_address": email, "status": "subscribed"} for email in emails[:2]]
         + [{"email_address": emails[2], "status": "pending"}]},
    )  # fmt: skip

    # Then
    posts = receiver.posts(2)
    time.sleep(0.2)
    assert sorted(post["data[email]"] for post in receiver.posts(2)) == sorted(emails[:2])
    assert {post["type"] for post in posts} == {"subscribe"}


# -- filtering -----------------------------------------------------------------------------
def test_only_the_events_a_webhook_asked_for_are_posted(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    everything, unsubscribes = webhook_receiver(), webhook_receiver()
    register(marketing, everything)
    register(marketing, unsubscribes, events={"unsubscribe": True})
    email = unique_email("filtered")

    # When
    subscribe(marketing, email)
    marketing.lists.update_list_member(DEFAULT_LIST_ID, email, {"status": "unsubscribed"})

    # Then (deliveries run concurrently: Mailchimp promises no order either)
    assert sorted(post["type"] for post in everything.posts(2)) == ["subscribe", "unsubscribe"]
    time.sleep(0.2)
    assert [post["type"] for post in unsubscribes.posts()] == ["unsubscribe"]


def test_only_the_sources_a_webhook_asked_for_are_posted(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given a webhook for people and admins, not for our own API writes
    receiver = webhook_receiver()
    register(marketing, receiver, sources={"user": True, "admin": True, "api": False})
    first, second = unique_email("api"), unique_email("admin")
    subscribe(marketing, first)
    subscribe(marketing, second)

    # When
    sandbox.act_on_member(first, "unsubscribe", actor="user")
    sandbox.act_on_member(second, "clean", actor="admin")

    # Then
    posts = receiver.posts(2)
    time.sleep(0.2)
    assert sorted((post["type"], post["data[email]"]) for post in receiver.posts(2)) == [
        ("cleaned", second),
        ("unsubscribe", first),
    ]
    assert len(posts) == 2
    assert sorted(delivery["source"] for delivery in sandbox.wait_for_deliveries(2)) == ["admin", "user"]


def test_another_audiences_changes_are_not_posted(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    receiver = webhook_receiver()
    register(marketing, receiver)
    sandbox.seed("otheraudie", 1)
    email = unique_email("elsewhere")

    # When
    marketing.lists.set_list_member("otheraudie", email, {"email_address": email, "status_if_new": "subscribed"})
    time.sleep(0.3)

    # Then
    assert [request.method for request in receiver.requests] == ["GET"]
    assert sandbox.webhook_deliveries() == []


# -- signatures ----------------------------------------------------------------------------
def verify(header: str, secret: str, body: bytes) -> int:
    parts = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    return int(parts["t"])


def test_a_signed_webhook_carries_a_verifiable_signature(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    receiver = webhook_receiver()
    register(marketing, receiver, secret="whsec-test-1")

    # When
    subscribe(marketing, unique_email("signed"))

    # Then
    receiver.posts()
    [seen] = [request for request in receiver.requests if request.method == "POST"]
    timestamp = verify(seen.headers["X-Mailchimp-Signature"], "whsec-test-1", seen.body)
    assert abs(timestamp - time.time()) < 5


def test_a_secret_set_through_the_control_api_signs_later_deliveries(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    receiver = webhook_receiver()
    webhook = register(marketing, receiver)

    # When
    shown = sandbox.set_webhook(webhook["id"], secret="rotated-2")
    subscribe(marketing, unique_email("resigned"))

    # Then
    assert shown["signed"] is True
    receiver.posts()
    [seen] = [request for request in receiver.requests if request.method == "POST"]
    verify(seen.headers["X-Mailchimp-Signature"], "rotated-2", seen.body)


# -- failures, retries, 410 ----------------------------------------------------------------
def test_a_failing_receiver_gets_the_same_delivery_again_until_it_succeeds(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given a receiver that fails twice (500, then a dropped connection) and then succeeds
    receiver = webhook_receiver(Answer(200), Answer(500), RESET, Answer(200))
    register(marketing, receiver)

    # When
    subscribe(marketing, unique_email("retried"))

    # Then
    [delivery] = sandbox.wait_for_deliveries()
    assert (delivery["status"], delivery["attempts"], delivery["answered"]) == ("delivered", 3, 200)
    assert [attempt["answered"] for attempt in delivery["history"]] == [500, None, 200]
    assert "connection" in delivery["history"][1]["error"].lower()
    bodies = {request.body for request in receiver.requests if request.method == "POST"}
    assert len(bodies) == 1


def test_a_delivery_that_keeps_failing_stops_when_the_retry_window_closes(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    sandbox.webhook_settings(retry_delays=[0.05], retry_window_seconds=0.3)
    receiver = webhook_receiver(Answer(200), Answer(503))
    register(marketing, receiver)

    # When
    subscribe(marketing, unique_email("doomed"))

    # Then
    [delivery] = sandbox.wait_for_deliveries()
    assert delivery["status"] == "failed"
    assert delivery["answered"] == 503
    assert 2 <= delivery["attempts"] <= 8
    assert delivery["history"][-1]["at"] - delivery["created"] <= 0.3 + 0.1


def test_a_410_disables_the_webhook_and_nothing_more_is_posted(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    receiver = webhook_receiver(Answer(200), Answer(410))
    webhook = register(marketing, receiver)
    subscribe(marketing, unique_email("first"))
    [gone] = sandbox.wait_for_deliveries()

    # When
    subscribe(marketing, unique_email("second"))
    time.sleep(0.3)

    # Then
    assert (gone["status"], gone["attempts"], gone["answered"]) == ("gone", 1, 410)
    [state] = sandbox.webhooks()
    assert state["enabled"] is False
    assert "410" in state["disabled_reason"]
    assert len(receiver.posts()) == 1
    assert len(sandbox.webhook_deliveries()) == 1
    # The Marketing API still lists it, in the spec's shape.
    assert marketing.lists.get_list_webhook(DEFAULT_LIST_ID, webhook["id"])["url"] == receiver.url


def test_a_disabled_webhook_can_be_enabled_again_through_the_control_api(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given
    receiver = webhook_receiver(Answer(200), Answer(410), Answer(200))
    webhook = register(marketing, receiver)
    subscribe(marketing, unique_email("first"))
    sandbox.wait_for_deliveries(status="gone")

    # When
    sandbox.set_webhook(webhook["id"], enabled=True)
    subscribe(marketing, unique_email("second"))

    # Then
    assert len(sandbox.wait_for_deliveries(status="delivered")) == 1
    assert sandbox.webhooks()[0]["enabled"] is True


def test_deleting_a_webhook_stops_its_pending_retries(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given a delivery waiting for its next attempt
    sandbox.webhook_settings(retry_delays=[0.3])
    receiver = webhook_receiver(Answer(200), Answer(500), Answer(200))
    webhook = register(marketing, receiver)
    subscribe(marketing, unique_email("orphan"))
    sandbox.wait_for_deliveries(status="retrying")

    # When
    marketing.lists.delete_list_webhook(DEFAULT_LIST_ID, webhook["id"])

    # Then
    [delivery] = sandbox.wait_for_deliveries()
    assert (delivery["status"], delivery["attempts"]) == ("failed", 1)
    assert "deleted" in delivery["error"]
    assert len(receiver.posts()) == 1


def test_a_receiver_slower_than_the_timeout_is_retried(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given a 0.3 s timeout (Mailchimp's is 10 s) and a receiver that first takes a second
    sandbox.webhook_settings(timeout_seconds=0.3)
    receiver = webhook_receiver(Answer(200), Answer(200, delay=1.0), Answer(200))
    register(marketing, receiver)

    # When
    subscribe(marketing, unique_email("slowpoke"))

    # Then
    [delivery] = sandbox.wait_for_deliveries()
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)
    assert delivery["history"][0]["answered"] is None
    assert delivery["history"][0]["error"].startswith("timeout")


def test_the_api_answers_without_waiting_for_the_receiver(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given a receiver that takes 0.6 s to answer
    receiver = webhook_receiver(Answer(200), Answer(200, delay=0.6))
    register(marketing, receiver)

    # When
    started = time.monotonic()
    subscribe(marketing, unique_email("quick"))
    took = time.monotonic() - started

    # Then
    assert took < 0.3
    assert sandbox.wait_for_deliveries()[0]["status"] == "delivered"


def test_reset_forgets_deliveries_and_drops_their_retries(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    webhook_receiver: Receiver,
    unique_email: Callable[[str], str],
) -> None:
    # Given a delivery waiting for its next attempt
    sandbox.webhook_settings(retry_delays=[0.5])
    receiver = webhook_receiver(Answer(200), Answer(500))
    register(marketing, receiver)
    subscribe(marketing, unique_email("forgotten"))
    sandbox.wait_for_deliveries(status="retrying")

    # When
    sandbox.reset()
    time.sleep(0.8)

    # Then
    assert sandbox.webhook_deliveries() == []
    assert sandbox.webhooks() == []
    assert len(receiver.posts()) == 1
    assert sandbox.webhook_settings()["retry_delays"] == [0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0]
