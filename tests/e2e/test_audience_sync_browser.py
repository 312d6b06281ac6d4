"""The two-way sync watched in a browser (headless Chromium): a person signs up through
POST /subscribe, then someone clicks the sandbox page's buttons (confirm, unsubscribe) and the
changes come back as events on the local stack's bus."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.mailchimp.client import SandboxClient
from sandbox.mailchimp.constants import DEFAULT_LIST_ID
from sandbox.stack.pytest_plugin import RunningStack
from sandbox.stack.stack import LocalStack
from tests.support.audience_sync import new_email, published_about, register_webhook, subscribe

pytestmark = [pytest.mark.xdist_group("local-stack"), pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def synced(local_stack: RunningStack) -> Iterator[tuple[LocalStack, SandboxClient]]:
    sandbox = SandboxClient(str(local_stack.sandbox_url))
    webhook_id = register_webhook(local_stack.stack, sandbox)
    yield local_stack.stack, sandbox
    sandbox.marketing_sdk().lists.delete_list_webhook(DEFAULT_LIST_ID, webhook_id)
    sandbox.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def click(page: Any, sandbox_url: str, email: str, action: str) -> None:
    """Open the sandbox page and click ``action`` on the member's row (the page reloads after)."""
    page.goto(sandbox_url)
    row = page.locator(f'tr[data-email="{email}"]')
    with page.expect_navigation():
        row.locator(f'button[data-action="{action}"]').click()


def test_clicking_confirm_then_unsubscribe_on_the_sandbox_page_publishes_both_changes(synced, page):
    stack, sandbox = synced
    # Given a pending signup through POST /subscribe
    email = new_email("browser")
    subscribe(stack, email, "Katherine")

    # When the person's "Confirm" button is clicked on the sandbox page
    click(page, sandbox.url, email, "confirm")

    # Then a Member Subscribed event with the person's first name is on the bus
    (subscribed,) = published_about(stack, email, "Member Subscribed")
    assert subscribed["detail"]["merge_fields"]["FNAME"] == "Katherine"

    # When "Unsubscribe" is clicked (the page's default reason)
    click(page, sandbox.url, email, "unsubscribe")

    # Then a Member Unsubscribed event with that reason follows
    (unsubscribed,) = published_about(stack, email, "Member Unsubscribed")
    assert unsubscribed["detail"]["reason"] == "manual"
