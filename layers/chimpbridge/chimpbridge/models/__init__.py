"""Request, response, domain and stored-item models, one module per concern.

Pydantic models, except what the signup function and the secrets it reads need: those are
dataclasses with explicit checks, because importing pydantic would lengthen that function's
cold start (docs/benchmarks.md, "Cold start of every function"). Both kinds check outside
input one way, with the rules of :mod:`chimpbridge.models.checks`; a dataclass's
``from_document`` reads parsed JSON and raises ValueError naming the member, never its value.
"""

from __future__ import annotations

from typing import Any

_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def lax_bool(value: Any) -> bool:
    """A yes/no as people and pages send it: true/false, 1/0, or "on", "yes", "false"..."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("must be true or false")
