"""Signed, short-lived tokens of the connect flow (HMAC-SHA256 with the OAuth secret's
``signing_key``), each for one purpose:

- ``link``: the one-time connect link an operator opens (``tools/mailchimp_connect.py link``);
- ``status`` / ``disconnect``: the operator's calls, sent as ``Authorization: Bearer <token>``;
- ``state``: the OAuth ``state``, bound to the browser that started the authorization by the
  hash of its cookie.

A token is ``<payload>.<signature>``, both base64url; the payload is JSON ``{"p": purpose,
"n": nonce, "e": expiry (unix s), "b": binding}``. Checking is in constant time and says why a
token failed; single use (the nonce) is enforced by the caller in DynamoDB.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from chimpbridge.errors import ConnectRefused

_DOMAIN = b"chimpbridge-connect-v1."


@dataclass(frozen=True)
class Claims:
    purpose: str
    nonce: str
    expires_at: int


def browser_binding(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode()).hexdigest()


def issue(key: str, purpose: str, ttl_seconds: int, *, binding: str = "", now: float | None = None) -> str:
    issued = time.time() if now is None else now
    payload = {"p": purpose, "n": secrets.token_urlsafe(16), "e": int(issued + ttl_seconds), "b": binding}
    body = _encode(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_signature(key, body)}"


def check(key: str, token: str | None, purpose: str, *, binding: str = "", now: float | None = None) -> Claims:
    """The token's claims; raises :class:`ConnectRefused` (``forged``, ``expired``, ``foreign``)."""
    body, _, signature = (token or "").partition(".")
    # As bytes: compare_digest refuses str with non-ASCII characters (a query or header can hold any).
    presented = signature.encode("utf-8", "replace")
    if not body or not signature or not hmac.compare_digest(presented, _signature(key, body).encode()):
        raise ConnectRefused("forged", "This link or request is not valid.")
    try:
        payload = json.loads(_decode(body))
        claims = Claims(str(payload["p"]), str(payload["n"]), int(payload["e"]))
        bound = str(payload.get("b") or "")
    except (ValueError, KeyError, TypeError):
        raise ConnectRefused("forged", "This link or request is not valid.") from None
    if claims.purpose != purpose:
        raise ConnectRefused("forged", "This link or request is not valid.")
    if (time.time() if now is None else now) >= claims.expires_at:
        raise ConnectRefused("expired", "This link has expired. Start again with a new one.")
    if not hmac.compare_digest(bound, binding):
        raise ConnectRefused("foreign", "This authorization was started in another browser. Start again here.")
    return claims


def _signature(key: str, body: str) -> str:
    return _encode(hmac.new(key.encode(), _DOMAIN + body.encode(), hashlib.sha256).digest())


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
