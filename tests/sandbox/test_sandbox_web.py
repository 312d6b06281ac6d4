"""The sandbox's page at ``/`` in headless Chromium (skipped where /usr/bin/chromium is absent).
A screenshot is kept under test-artifacts/."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import mailchimp_marketing
import mailchimp_transactional
import pytest
import requests

from sandbox.mailchimp import DEFAULT_LIST_ID
from sandbox.mailchimp.client import SandboxClient
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("mailchimp-sandbox-browser")]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    opened = browser.new_page(viewport={"width": 1280, "height": 900})
    yield opened
    opened.close()


def test_the_page_shows_member_counts_by_status_for_each_audience(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, page: Any
) -> None:
    # Given
    sandbox.seed(DEFAULT_LIST_ID, 1000, seed=5)
    sandbox.seed("webaudienc", 30, seed=6)
    expected = marketing.lists.get_list(DEFAULT_LIST_ID)["stats"]

    # When
    page.goto(sandbox.url)

    # Then
    row = page.locator(f'[data-testid="audiences"] tr[data-list-id="{DEFAULT_LIST_ID}"]')
    assert row.locator('[data-status="subscribed"]').inner_text() == str(expected["member_count"])
    assert row.locator('[data-status="unsubscribed"]').inner_text() == str(expected["unsubscribe_count"])
    assert page.locator('[data-testid="audiences"] tr[data-list-id="webaudienc"]').count() == 1


def test_the_page_lists_the_newest_members_first(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str], page: Any
) -> None:
    # Given
    sandbox.seed(DEFAULT_LIST_ID, 100)
    newest = unique_email("newest")
    marketing.lists.add_list_member(
        DEFAULT_LIST_ID, {"email_address": newest, "status": "pending", "merge_fields": {"FNAME": "Nia"}}
    )

    # When
    page.goto(sandbox.url)

    # Then
    first_row = page.locator(f'[data-testid="members-{DEFAULT_LIST_ID}"] tbody tr').first
    assert newest in first_row.inner_text()
    assert "pending" in first_row.inner_text()


def test_the_page_renders_each_outbox_email_and_a_screenshot_is_kept(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    transactional: mailchimp_transactional.Client,
    unique_email: Callable[[str], str],
    page: Any,
) -> None:
    # Given
    sandbox.seed(DEFAULT_LIST_ID, 500, seed=9)
    to, blocked = unique_email("reader"), unique_email("blocked")
    transactional.rejects.add({"email": blocked})
    transactional.messages.send(
        {
            "message": {
                "from_email": "hello@example.org",
                "from_name": "Chimpbridge",
                "subject": "Welcome *|FNAME|*",
                "html": "<h1>Welcome *|FNAME|*</h1><p>Thanks for signing up.</p>",
                "to": [{"email": to}, {"email": blocked}],
                "global_merge_vars": [{"name": "FNAME", "content": "Ann"}],
                "tags": ["welcome"],
            }
        }
    )

    # When
    page.goto(sandbox.url)

    # Then
    message = page.locator('[data-testid="message"]').first
    assert message.locator('[data-testid="subject"]').inner_text() == "Welcome Ann"
    assert "rejected" in message.inner_text()
    assert page.frame_locator('[data-testid="message"] iframe').first.locator("h1").inner_text() == "Welcome Ann"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sandbox-web.png"), full_page=True)
    assert (ARTIFACTS / "sandbox-web.png").stat().st_size > 0


def test_confirming_with_the_button_delivers_the_subscribe_webhook_to_the_receiver(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    unique_email: Callable[[str], str],
    webhook_receiver: Callable[..., WebhookReceiver],
    page: Any,
) -> None:
    # Given a webhook for people and admins (not API writes) and a pending signup
    receiver = webhook_receiver()
    marketing.lists.create_list_webhook(
        DEFAULT_LIST_ID, {"url": receiver.url, "sources": {"user": True, "admin": True, "api": False}}
    )
    email = unique_email("clicker")
    marketing.lists.add_list_member(
        DEFAULT_LIST_ID, {"email_address": email, "status": "pending", "merge_fields": {"FNAME": "Cleo"}}
    )
    page.goto(sandbox.url)

    # When the person confirms
    page.locator(f'tr[data-email="{email}"] button[data-action="confirm"]').click()
    page.locator('[data-testid="action-result"]', has_text="confirm").wait_for()

    # Then the receiver gets the subscribe form, and the page shows the member and the delivery
    [post] = receiver.posts()
    assert (post["type"], post["data[email]"], post["data[merges][FNAME]"]) == ("subscribe", email, "Cleo")
    sandbox.wait_for_deliveries()
    page.reload()
    assert page.locator(f'tr[data-email="{email}"] [data-field="status"]').inner_text() == "subscribed"
    delivered = page.locator('[data-testid="deliveries"] tr[data-type="subscribe"][data-status="delivered"]')
    assert delivered.count() == 1
    assert "user" in delivered.inner_text()


def test_an_admin_changes_the_address_and_unsubscribes_with_a_reason_from_the_page(
    sandbox: SandboxClient,
    marketing: mailchimp_marketing.Client,
    unique_email: Callable[[str], str],
    webhook_receiver: Callable[..., WebhookReceiver],
    page: Any,
) -> None:
    # Given
    receiver = webhook_receiver()
    marketing.lists.create_list_webhook(
        DEFAULT_LIST_ID, {"url": receiver.url, "sources": {"user": True, "admin": True, "api": False}}
    )
    old, new = unique_email("before"), unique_email("after")
    marketing.lists.add_list_member(DEFAULT_LIST_ID, {"email_address": old, "status": "subscribed"})
    page.goto(sandbox.url)
    page.locator('[data-testid="action-settings"] input[value="admin"]').check()

    # When the admin changes the address, then unsubscribes the member as a spam complaint
    row = page.locator(f'tr[data-email="{old}"]')
    row.locator("summary", has_text="Change address").click()
    row.locator('input[name="new_email"]').fill(new)
    row.locator('button[data-action="change_email"]').click()
    page.locator('[data-testid="action-result"]', has_text="change_email").wait_for()
    page.locator('[data-testid="action-settings"] input[value="admin"]').check()
    page.locator('[data-testid="action-settings"] select[name="unsubscribe_reason"]').select_option("abuse")
    page.locator(f'tr[data-email="{new}"] button[data-action="unsubscribe"]').click()
    page.locator('[data-testid="action-result"]', has_text="unsubscribe").wait_for()

    # Then
    upemail, unsubscribe = sorted(receiver.posts(2), key=lambda post: post["type"] != "upemail")
    assert (upemail["type"], upemail["data[old_email]"], upemail["data[new_email]"]) == ("upemail", old, new)
    assert (unsubscribe["type"], unsubscribe["data[email]"]) == ("unsubscribe", new)
    assert unsubscribe["data[reason]"] == "abuse"
    assert [delivery["source"] for delivery in sandbox.wait_for_deliveries(2)] == ["admin", "admin"]
    page.reload()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sandbox-web-webhooks.png"), full_page=True)


def test_the_outbox_buttons_fire_mandrill_events_to_the_webhook(
    sandbox: SandboxClient,
    transactional: mailchimp_transactional.Client,
    webhook_receiver: Callable[..., WebhookReceiver],
    unique_email: Callable[[str], str],
    page: Any,
) -> None:
    # Given a Mandrill webhook and a delivered message
    sandbox.webhook_settings(batch_seconds=0.05)
    receiver = webhook_receiver()
    sandbox.add_mandrill_webhook(receiver.url, ["send", "delivered", "open", "click"])
    email = unique_email("reader")
    transactional.messages.send(
        {
            "message": {
                "from_email": "hello@example.org",
                "subject": "Links",
                "html": '<p><a href="https://example.org/start">start</a></p>',
                "to": [{"email": email}],
            }
        }
    )
    sandbox.wait_for_deliveries(kind="mandrill")
    page.goto(sandbox.url)
    recipient = page.locator(f'[data-testid="recipients"] tr[data-email="{email}"]')

    # When
    recipient.locator('button[data-mandrill-event="click"]').click()
    page.locator('[data-testid="action-result"]', has_text="click").wait_for()
    sandbox.wait_for_deliveries(2, kind="mandrill")
    page.reload()

    # Then
    events = page.locator(f'[data-testid="recipients"] tr[data-email="{email}"] [data-field="events"]')
    assert events.inner_text() == "send, delivered, click https://example.org/start"
    assert page.locator('[data-testid="mandrill-webhooks"] [data-field="events_sent"]').inner_text() == "3"
    assert page.locator('[data-testid="deliveries"] tr[data-kind="mandrill"][data-status="delivered"]').count() == 2
    page.screenshot(path=str(ARTIFACTS / "sandbox-web-mandrill.png"), full_page=True)


def test_the_page_lists_oauth_tokens_and_revokes_one_with_a_click(sandbox: SandboxClient, page: Any) -> None:
    # Given a token issued through the authorization-code flow
    form = {"client_id": "sandbox-oauth-client", "redirect_uri": "http://127.0.0.1:3000/connect/mailchimp/callback"}
    allowed = requests.post(
        f"{sandbox.url}/oauth2/authorize", data={**form, "decision": "allow"}, allow_redirects=False, timeout=10
    )
    code = parse_qs(urlsplit(allowed.headers["Location"]).query)["code"][0]
    exchange = {
        **form,
        "grant_type": "authorization_code",
        "code": code,
        "client_secret": "sandbox-oauth-client-secret",
    }
    token = requests.post(f"{sandbox.url}/oauth2/token", data=exchange, timeout=10).json()["access_token"]

    # When the page's Revoke button is clicked
    page.goto(sandbox.url)
    with page.expect_navigation():
        page.click(f'[data-testid="oauth-tokens"] button[data-revoke="{token}"]')

    # Then the token shows revoked, and the Marketing API refuses it
    assert page.locator('[data-testid="oauth-tokens"] tr[data-state="revoked"]').count() == 1
    answer = requests.get(f"{sandbox.marketing_url}/ping", headers={"Authorization": f"OAuth {token}"}, timeout=10)
    assert answer.status_code == 401
