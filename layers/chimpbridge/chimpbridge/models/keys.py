"""Parts of dedupe and idempotency keys, spelled one way.

Two deliveries that mean the same thing must make the same key, or the thing happens twice
(two emails for one registration). Outside input can spell one value several ways: stray
whitespace, another Unicode normalization form, the case of a value that has none.
"""

from __future__ import annotations

import unicodedata
from uuid import UUID


def key_part(value: str) -> str:
    """One part of a key as its sender meant it: Unicode NFC, without surrounding whitespace
    (``"f1"`` and ``"f1 "`` are one flow, and so are a composed and a decomposed ``"café"``)."""
    return unicodedata.normalize("NFC", value).strip()


def flow_key(flow_id: str) -> str:
    """A flow id as a key part. Kratos' ids are UUIDs, whose hex digits have no case: any
    spelling of one UUID is one flow. Other ids are compared as :func:`key_part` leaves them."""
    part = key_part(flow_id)
    try:
        return str(UUID(part))
    except ValueError:
        return part
