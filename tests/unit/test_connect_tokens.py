"""Signed connect tokens (links, states, operator tokens): what each refusal is called."""

from __future__ import annotations

import time

import pytest

from chimpbridge.errors import ConnectRefused
from chimpbridge.logic import connect_tokens

KEY = "unit-test-signing-key-0123456789"


def refusal(token: str | None, purpose: str = "link", binding: str = "") -> str:
    with pytest.raises(ConnectRefused) as refused:
        connect_tokens.check(KEY, token, purpose, binding=binding)
    return refused.value.kind


def test_a_token_checks_out_for_its_purpose_and_binding():
    # Given
    token = connect_tokens.issue(KEY, "state", 60, binding="b1")

    # When
    claims = connect_tokens.check(KEY, token, "state", binding="b1")

    # Then
    assert claims.purpose == "state" and claims.expires_at > time.time()


@pytest.mark.parametrize(
    ("token", "purpose", "binding", "kind"),
    [
        (None, "link", "", "forged"),
        ("", "link", "", "forged"),
        ("abc.def", "link", "", "forged"),
        (connect_tokens.issue("other-key-0123456789abcdef", "link", 3600), "link", "", "forged"),
        (connect_tokens.issue(KEY, "status", 3600), "disconnect", "", "forged"),
        (connect_tokens.issue(KEY, "link", 60, now=time.time() - 3_700), "link", "", "expired"),
        (connect_tokens.issue(KEY, "state", 3600, binding="b1"), "state", "b2", "foreign"),
        (connect_tokens.issue(KEY, "state", 3600, binding="b1"), "state", "", "foreign"),
        ("abc.d\u00e9f", "link", "", "forged"),
        ("\u00e9t\u00e9.\u00e9t\u00e9", "status", "", "forged"),
    ],
    ids=[
        *("none", "empty", "garbled", "other key", "other purpose", "expired", "other browser", "no cookie"),
        *("non-ascii signature", "non-ascii token"),
    ],
)
def test_refusals_are_named(token: str | None, purpose: str, binding: str, kind: str):
    assert refusal(token, purpose, binding) == kind


def test_a_changed_payload_breaks_the_signature():
    # Given a token whose payload was edited (a later expiry)
    body, signature = connect_tokens.issue(KEY, "link", 60).split(".")
    tampered = connect_tokens._encode(connect_tokens._decode(body).replace(b'"e":', b'"e":9'))

    # Then
    assert refusal(f"{tampered}.{signature}") == "forged"


def test_the_browser_binding_is_a_hash_of_the_cookie():
    assert connect_tokens.browser_binding("cookie") != "cookie"
    assert len(connect_tokens.browser_binding("cookie")) == 64
