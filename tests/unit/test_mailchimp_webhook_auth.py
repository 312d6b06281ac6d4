"""Who may deliver a Mailchimp audience webhook (logic/mailchimp_webhook_auth.py): the URL's token
(404 when wrong) and the X-Mailchimp-Signature of signed webhooks (401 when bad)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from chimpbridge.errors import NotFound, Unauthorized
from chimpbridge.logic.mailchimp_webhook_auth import signature_parts, verify_signature, verify_token

KEY = "signing-key"
BODY = b"type=subscribe&data%5Bemail%5D=a%40example.com"
NOW = 1_800_000_000


def signed(timestamp: int = NOW, key: str = KEY, body: bytes = BODY) -> str:
    return hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(header: str | None, *, now: float = NOW) -> None:
    verify_signature(header, BODY, key=KEY, now=now, tolerance_seconds=300)


@pytest.mark.parametrize("token", ["current", "previous"])
def test_every_accepted_token_opens_the_url(token):
    verify_token(token, ["current", "previous"])


@pytest.mark.parametrize("token", ["", "curren", "current ", "CURRENT", "previous-and-more"])
def test_anything_else_is_not_found(token):
    with pytest.raises(NotFound):
        verify_token(token, ["current", "previous"])


def test_no_accepted_token_opens_nothing_not_even_an_empty_one():
    with pytest.raises(NotFound):
        verify_token("", [""])


def test_a_signature_made_with_the_key_over_t_and_the_raw_body_is_accepted():
    verify(f"t={NOW},v1={signed()}")


def test_the_signature_may_be_one_of_several_and_in_upper_case():
    verify(f"t={NOW}, v1={'0' * 64}, v1={signed().upper()}")


@pytest.mark.parametrize("skew", [-300, 300])
def test_the_tolerance_is_five_minutes_either_way(skew):
    verify(f"t={NOW + skew},v1={signed(NOW + skew)}")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1=abc",
        f"t={NOW}",
        "t=soon,v1=abc",
        "garbage",
        f"t={NOW},v1={signed(key='other')}",
        f"t={NOW},v1={signed(body=BODY + b'&x=1')}",
        f"t={NOW - 301},v1={signed(NOW - 301)}",
        f"t={NOW + 301},v1={signed(NOW + 301)}",
        f"t={NOW},v0={signed()}",
    ],
)
def test_a_missing_malformed_forged_or_stale_signature_is_unauthorized(header):
    with pytest.raises(Unauthorized):
        verify(header)


def test_signature_parts_reads_t_and_every_v1():
    assert signature_parts("t=12,v1=AB,v1=cd") == (12, ["ab", "cd"])
