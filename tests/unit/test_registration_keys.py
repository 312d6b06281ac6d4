"""The hook key check: every accepted key, constant-time, the header forms Kratos sends."""

import base64
import hmac

import pytest

from chimpbridge.errors import Unauthorized
from chimpbridge.logic.hook_keys import presented_key, verify

KEYS = ["current-key-0123456789", "previous-key-9876543210"]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    "header",
    [KEYS[0], KEYS[1], f"Bearer {KEYS[0]}", f"bearer {KEYS[1]}", basic("kratos", KEYS[0]), f"  {KEYS[0]}  "],
)
def test_an_accepted_key_in_any_form_kratos_sends_passes(header):
    verify(header, KEYS)


@pytest.mark.parametrize(
    "header",
    [None, "", "wrong", KEYS[0][:-1], KEYS[0] + "x", f"Bearer {KEYS[0]}x", basic(KEYS[0], "wrong"), "Basic !!!"],
)
def test_a_missing_or_wrong_key_is_unauthorized(header):
    with pytest.raises(Unauthorized):
        verify(header, KEYS)


def test_no_accepted_keys_lets_nobody_in():
    with pytest.raises(Unauthorized):
        verify("", [])


def test_basic_auth_yields_the_password_whatever_the_user():
    assert presented_key(basic("any-user", "pass:with:colons")) == "pass:with:colons"


def test_every_accepted_key_is_compared(monkeypatch):
    # Given a check that records the keys it compared
    compared = []
    real = hmac.compare_digest

    def recording(a, b):
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)

    # When the first key matches
    verify(KEYS[0], KEYS)

    # Then the other key was compared too (no early exit that would time which key matched)
    assert compared == [key.encode() for key in KEYS]
