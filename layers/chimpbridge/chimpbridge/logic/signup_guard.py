"""Bot protection for signups, after MC4WP: a honeypot field that must stay empty, a signed form
timestamp that (when present) must be 2 s to 24 h old, and no crawler user agents.

A bot is never told: it gets the same success answer as a person, and nothing is written.
The form timestamp is ``<unix seconds>.<signature>``, signed with HMAC-SHA256 by a key kept in
Secrets Manager; ``GET /subscribe/token`` hands one out for pages to put in ``_form_token``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from typing import Any

from chimpbridge.errors import ConfigurationError
from chimpbridge.models.checks import expect, json_members
from chimpbridge.secrets import get_secret

MIN_FORM_AGE_SECONDS = 2
MAX_FORM_AGE_SECONDS = 24 * 3600
# MC4WP's list (plus Slurp and Mediapartners); matched case-insensitively anywhere in the agent.
BOT_USER_AGENT = re.compile(r"bot|crawl|spider|slurp|seo|lighthouse|facebookexternalhit|preview|mediapartners", re.I)
_TOKEN = re.compile(r"^(\d{9,11})\.([A-Za-z0-9_-]{16,64})$")
_SIGNATURE_BYTES = 24


@dataclass(frozen=True)
class FormTokenKey:
    """The signup form secret: ``{"form_token_key": "..."}`` (the template generates it)."""

    form_token_key: str = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.form_token_key) < 16:
            raise ValueError("form_token_key must be at least 16 characters")

    @classmethod
    def from_document(cls, document: Any) -> FormTokenKey:
        members = json_members(document, cls)
        expect(members, str, "form_token_key")
        return cls(members.get("form_token_key", ""))


@dataclass(frozen=True)
class Verdict:
    bot: bool
    reason: str = ""


PERSON = Verdict(bot=False)


def screen(
    *,
    honeypot_filled: bool,
    form_token: str | None,
    user_agent: str | None,
    browser_form: bool,
    form_secret_arn: str | None,
    require_token: bool = False,
    now: float | None = None,
) -> Verdict:
    """Whether a signup looks like a bot, and why (for the logs). ``require_token``: a signup
    without a form token is one (pages that all fetch the token; docs/security.md says when)."""
    if honeypot_filled:
        return Verdict(bot=True, reason="honeypot")
    agent = (user_agent or "").strip()
    if BOT_USER_AGENT.search(agent) or (browser_form and len(agent) < 2):
        return Verdict(bot=True, reason="user-agent")
    if form_token is None:
        return Verdict(bot=True, reason="form-token-missing") if require_token else PERSON
    return _token_verdict(token_age(form_token, form_secret_arn, now=now))


def _token_verdict(age: float | None) -> Verdict:
    if age is None:
        return Verdict(bot=True, reason="form-token-invalid")
    if age < MIN_FORM_AGE_SECONDS:
        return Verdict(bot=True, reason="form-token-too-new")
    if age > MAX_FORM_AGE_SECONDS:
        return Verdict(bot=True, reason="form-token-expired")
    return PERSON


def issue_token(form_secret_arn: str | None, *, now: float | None = None) -> str:
    """A form timestamp for now, signed."""
    issued = int(time.time() if now is None else now)
    return f"{issued}.{_signature(_key(form_secret_arn), issued)}"


def token_age(token: str, form_secret_arn: str | None, *, now: float | None = None) -> float | None:
    """Seconds since ``token`` was issued, or None when it is malformed or not ours."""
    match = _TOKEN.match(token.strip())
    if match is None:
        return None
    issued = int(match.group(1))
    if not hmac.compare_digest(match.group(2), _signature(_key(form_secret_arn), issued)):
        return None
    return (time.time() if now is None else now) - issued


def _key(form_secret_arn: str | None) -> bytes:
    if not form_secret_arn:
        raise ConfigurationError("SIGNUP_FORM_SECRET_ARN is not set (needed for form tokens)")
    return get_secret(form_secret_arn, FormTokenKey).form_token_key.encode()


def _signature(key: bytes, issued: int) -> str:
    digest = hmac.new(key, f"chimpbridge-signup-form:{issued}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:_SIGNATURE_BYTES]).decode().rstrip("=")
