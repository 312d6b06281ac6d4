"""Who may deliver to ``/webhooks/mailchimp/{token}``: the URL's token, and (for webhooks created
with signing) the ``X-Mailchimp-Signature`` header. Pure functions; the clock is passed in.

A wrong token is a 404, exactly like an unknown path: the URL is the credential, and a caller
without it learns nothing, not even that the endpoint exists. A bad signature is a 401: the
token was right, so there is nothing left to hide. Neither is ever 410, which would make
Mailchimp disable the webhook for good.
"""

from __future__ import annotations

import hashlib
import hmac

from chimpbridge.errors import NotFound, Unauthorized


def verify_token(presented: str, accepted: list[str]) -> None:
    """Raise :class:`NotFound` unless ``presented`` is one of ``accepted``.

    Every accepted token is compared (no early exit), each with ``hmac.compare_digest``, so the
    answer time says nothing about which token, or how much of one, matched.
    """
    candidate = presented.encode("utf-8")
    matched = False
    for token in accepted:
        matched |= hmac.compare_digest(candidate, token.encode("utf-8"))
    if not presented or not matched:
        raise NotFound("unknown webhook token")


def signature_parts(header: str) -> tuple[int, list[str]]:
    """``t=<unix seconds>,v1=<hex>[,v1=<hex>...]`` -> (t, [v1...]); raises ValueError."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, separator, value = item.strip().partition("=")
        if not separator:
            raise ValueError("not name=value pairs")
        if name == "t":
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value.strip().lower())
    if timestamp is None or not signatures:
        raise ValueError("needs t and v1")
    return timestamp, signatures


def expected_signature(key: str, timestamp: int | str, body: bytes) -> str:
    """hex HMAC-SHA256 of ``<t>.<raw body>`` under ``key``."""
    return hmac.new(key.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify_signature(header: str | None, body: bytes, *, key: str, now: float, tolerance_seconds: int) -> None:
    """Raise :class:`Unauthorized` unless ``header`` signs ``body`` with ``key`` within the
    tolerance (either way: a replayed old delivery and a forged future one both fail)."""
    if not header:
        raise Unauthorized("missing X-Mailchimp-Signature")
    try:
        timestamp, signatures = signature_parts(header)
    except ValueError:
        raise Unauthorized("malformed X-Mailchimp-Signature") from None
    if abs(now - timestamp) > tolerance_seconds:
        raise Unauthorized("X-Mailchimp-Signature outside the tolerance")
    expected = expected_signature(key, timestamp, body).encode()
    matched = False
    for signature in signatures:
        matched |= hmac.compare_digest(expected, signature.encode("utf-8", "replace"))
    if not matched:
        raise Unauthorized("X-Mailchimp-Signature does not match")
