"""/connect/mailchimp: what the browser brings in the query (a link, a state, Mailchimp's code)
is checked by the text rules before anything reads it: a 422 problem naming the field, and the
Mailchimp secret stays as it was."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.mailchimp import MARKETING_API_KEY
from sandbox.mailchimp.client import SandboxClient
from tests.support.connect import Browser, ConnectWorld


@pytest.fixture
def world(sandbox: SandboxClient, aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectWorld]:
    yield ConnectWorld(sandbox, aws_env, monkeypatch)


@pytest.mark.parametrize("value", ["abc\r\nSet-Cookie: x=1", "abc\x00", "\u202eabc", "a" * 1_001])
def test_a_code_that_breaks_the_text_rules_is_422_and_nothing_changes(world: ConnectWorld, value: str) -> None:
    # Given an authorization Mailchimp sent back, with the code replaced
    browser = Browser()
    query = world.consent(world.start(browser).headers["Location"])

    # When the browser comes back with it
    page = world.callback(browser, {**query, "code": value})

    # Then it is refused at the door, naming the field
    assert page.status == 422
    assert page.headers["Content-Type"] == "application/problem+json"
    assert [error["field"] for error in page.json()["errors"]] == ["code"]
    assert world.mailchimp_secret() == {"api_key": MARKETING_API_KEY}


def test_a_link_with_a_line_break_is_422(world: ConnectWorld) -> None:
    page = world.start(Browser(), link=world.link() + "\n")

    assert page.status == 422
    assert [error["field"] for error in page.json()["errors"]] == ["link"]
