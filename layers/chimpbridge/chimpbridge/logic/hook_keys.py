"""Checking the key Ory Kratos presents, in constant time, against every accepted key.

Kratos authenticates a ``web_hook`` with ``api_key`` (the key as the value of a header the
operator names, ``Authorization`` by default) or ``basic_auth`` (``Authorization: Basic``
with a user and password; the password is the key, the user is not checked). A ``Bearer``
prefix is accepted too, for operators who configure ``value: Bearer <key>``.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from chimpbridge.errors import Unauthorized


def presented_key(header_value: str | None) -> str | None:
    """The key inside an auth header value (plain, ``Bearer <key>`` or ``Basic <b64>``)."""
    if not header_value:
        return None
    value = header_value.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer" and rest:
        return rest.strip()
    if scheme.lower() == "basic" and rest:
        try:
            decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _user, separator, password = decoded.partition(":")
        return password if separator else None
    return value


def verify(header_value: str | None, accepted_keys: list[str]) -> None:
    """Raise :class:`Unauthorized` unless the header carries one of ``accepted_keys``.

    Every accepted key is compared (no early exit), each with ``hmac.compare_digest``, so the
    answer time says nothing about which key, or how much of one, matched.
    """
    presented = presented_key(header_value)
    candidate = (presented or "").encode("utf-8")
    matched = False
    for key in accepted_keys:
        matched |= hmac.compare_digest(candidate, key.encode("utf-8"))
    if presented is None or not matched:
        raise Unauthorized("missing or unknown hook key")
