"""Who may deliver to ``/webhooks/mandrill``: ``X-Mandrill-Signature``. Pure functions.

Mandrill signs each POST with the webhook's key: base64 of HMAC-SHA1 over the webhook's URL
exactly as it was registered (scheme, host, path, trailing slash and query string as typed),
followed by every POST field's name and value, sorted by name, with no delimiter. A field sent
twice counts once, with its last value, as PHP (Mandrill's side) reads a form.

Keys: every key of the secret is tried (two while one is rotated out), each compared in
constant time and without an early exit. The generic key ``test-webhook`` signs only Mandrill's
test delivery, an empty list, so it is accepted for that and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

from chimpbridge.errors import Unauthorized


def signed_text(url: str, fields: dict[str, str]) -> bytes:
    """What Mandrill signs: the URL, then each field's name and value, sorted by name."""
    parts = [url]
    for name in sorted(fields):
        parts.append(name)
        parts.append(fields[name])
    return "".join(parts).encode("utf-8")


def signature(key: str, url: str, fields: dict[str, str]) -> str:
    """base64(HMAC-SHA1(key, signed_text)) as Mandrill sends it in X-Mandrill-Signature."""
    digest = hmac.new(key.encode("utf-8"), signed_text(url, fields), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(presented: str | None, url: str, fields: dict[str, str], keys: Iterable[str]) -> None:
    """Raise :class:`Unauthorized` unless ``presented`` signs (url, fields) with one of ``keys``."""
    if not presented:
        raise Unauthorized("missing X-Mandrill-Signature")
    candidate = presented.strip().encode("utf-8", "replace")
    matched = False
    for key in keys:
        if key:
            matched |= hmac.compare_digest(signature(key, url, fields).encode("ascii"), candidate)
    if not matched:
        raise Unauthorized("X-Mandrill-Signature does not match")
