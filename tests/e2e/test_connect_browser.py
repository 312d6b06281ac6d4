"""Connecting through OAuth 2 in headless Chromium against the local stack: the operator opens
the connect link (made by tools/mailchimp_connect.py), clicks Allow on the sandbox's authorize
page and lands on our success page; the Mailchimp secret then holds the token and server
prefix, a signup goes through with ``Authorization: OAuth``, and the status says connected."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.mailchimp.constants import OAUTH_ACCOUNT_EMAIL, OAUTH_SERVER_PREFIX
from tools.mailchimp_connect import Target, connect_link, local_target, operator_call

pytestmark = [pytest.mark.xdist_group("connect-stack"), pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
ORIGIN = "https://connect.example.org"


@pytest.fixture(scope="module")
def stack(local_stack_factory: Any) -> Any:
    """A stack of its own (its own parameters): connecting changes its Mailchimp secret."""
    return local_stack_factory(parameters={"AllowedOrigins": ORIGIN})


@pytest.fixture(scope="module")
def operator(stack: Any) -> Target:
    return local_target(stack.api_url, stack.moto_url, stack.resource("MailchimpOAuthSecret").arn)


@pytest.fixture
def page(browser: Any) -> Any:
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    context.close()


def mailchimp_secret(stack: Any) -> dict[str, Any]:
    arn = stack.resource("MailchimpSecret").arn
    return dict(json.loads(stack.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]))


def test_an_operator_connects_in_the_browser_and_signups_use_the_token(stack: Any, operator: Target, page: Any) -> None:
    # Given the operator's one-time connect link
    link = connect_link(operator)

    # When they open it, and click Allow on Mailchimp's authorize page
    page.goto(link)
    page.locator('[data-testid="oauth-allow"]').wait_for()
    with page.expect_navigation(url=f"{stack.api_url}/connect/mailchimp/callback*"):
        page.click('[data-testid="oauth-allow"]')

    # Then they land on our success page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "connect-success.png"))
    result = page.locator('[data-testid="connect-result"]')
    assert result.get_attribute("data-result") == "connected"
    assert OAUTH_ACCOUNT_EMAIL in result.inner_text()
    # and the secret holds the token Mailchimp issued, with the server prefix
    stored = mailchimp_secret(stack)
    issued = requests.get(f"{stack.sandbox_url}/_sandbox/oauth/tokens", timeout=10).json()
    assert stored["access_token"] in [token["access_token"] for token in issued]
    assert stored["server_prefix"] == OAUTH_SERVER_PREFIX and "api_key" not in stored

    # When a signup comes in right after
    before = requests.get(f"{stack.sandbox_url}/_sandbox/stats", timeout=10).json()["auth_schemes"].get("oauth", 0)
    email = f"connect-{uuid.uuid4().hex[:8]}@example.org"
    answer = requests.post(
        f"{stack.api_url}/subscribe",
        json={"email": email},
        headers={"User-Agent": BROWSER, "Origin": ORIGIN},
        timeout=30,
    )

    # Then it went through, authenticated with Authorization: OAuth
    assert answer.status_code == 200 and answer.json()["status"] == "pending"
    after = requests.get(f"{stack.sandbox_url}/_sandbox/stats", timeout=10).json()["auth_schemes"].get("oauth", 0)
    assert after > before
    # and the status says connected
    status = operator_call(operator, "status").json()
    assert status["connected"] is True and status["dc"] == OAUTH_SERVER_PREFIX
    assert status["account"] == OAUTH_ACCOUNT_EMAIL and stored["access_token"] not in json.dumps(status)


def test_deny_in_the_browser_ends_on_a_clear_page(stack: Any, operator: Target, page: Any) -> None:
    # Given
    before = mailchimp_secret(stack)

    # When
    page.goto(connect_link(operator))
    page.locator('[data-testid="oauth-deny"]').wait_for()
    with page.expect_navigation(url=f"{stack.api_url}/connect/mailchimp/callback*"):
        page.click('[data-testid="oauth-deny"]')

    # Then
    assert page.locator('[data-testid="connect-result"]').get_attribute("data-result") == "denied"
    assert mailchimp_secret(stack) == before
