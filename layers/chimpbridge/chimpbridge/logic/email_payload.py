"""Which members of Kratos' ``transient_payload`` an email may carry.

The transient payload is whatever the browser sent with the registration form: the person (or
anyone scripting the form) chooses its keys and values, and a Jsonnet may put Kratos' own data
(cookies, headers) in it by mistake. So nothing of it is forwarded by default. A flow's
``payload_keys`` (``EmailFlows``) names the members its template uses; of those, only scalars
are kept: text of at most :data:`MAX_TEXT_LENGTH` characters on one line, booleans, and
finite numbers. Everything else is dropped, and counted by the caller (never logged: a dropped
value may be a secret).

The hook applies this before it queues a message, so what was not allowed never reaches the
queue; the sender applies it again, for messages queued by an older configuration or another
producer.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from chimpbridge.models.checks import text_problem

MAX_TEXT_LENGTH = 200
Scalar = str | bool | int | float


@dataclass(frozen=True)
class AllowedPayload:
    values: dict[str, Scalar] = field(default_factory=dict)
    dropped: int = 0  # members left out: not allowlisted, or not a scalar within the limits


def _scalar(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return len(str(abs(value))) <= 15  # what a JSON reader elsewhere still reads exactly
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return text_problem(value, MAX_TEXT_LENGTH) is None  # the text rules of every outside input
    return False


def allowed(payload: Mapping[str, Any] | None, keys: Collection[str]) -> AllowedPayload:
    """The members of ``payload`` named in ``keys`` whose values are scalars within the limits."""
    if not payload:
        return AllowedPayload()
    values = {key: value for key, value in payload.items() if key in keys and _scalar(value)}
    return AllowedPayload(values=values, dropped=len(payload) - len(values))
