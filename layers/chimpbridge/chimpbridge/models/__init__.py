"""Request, response, domain and stored-item models, one module per concern.

Pydantic models, except what the signup function and the secrets it reads need: those are
dataclasses with explicit checks, because importing pydantic would lengthen that function's
cold start (docs/benchmarks.md, "Cold start of every function"). Their ``from_document`` reads
parsed JSON and raises ValueError naming the member, never its value.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def json_members(document: Any, model: type, *, forbid_unknown: bool = False) -> dict[str, Any]:
    """The members of a JSON object that the dataclass ``model`` has, null ones left out."""
    if not isinstance(document, dict):
        raise ValueError(f"a {model.__name__} must be a JSON object")
    names = {item.name for item in fields(model)}
    unknown = document.keys() - names
    if forbid_unknown and unknown:
        raise ValueError("unknown member " + ", ".join(sorted(unknown)))
    return {name: value for name, value in document.items() if name in names and value is not None}


def expect(members: dict[str, Any], kind: type, *names: str) -> None:
    """Each of ``names`` present in ``members`` is a ``kind``."""
    for name in names:
        if name in members and not isinstance(members[name], kind):
            raise ValueError(f"{name} must be {_KIND_NAMES.get(kind, kind.__name__)}")


def expect_text_list(members: dict[str, Any], *names: str) -> None:
    """Each of ``names`` present in ``members`` is a list of text."""
    for name in names:
        value = members.get(name, [])
        if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
            raise ValueError(f"{name} must be a list of text")


_KIND_NAMES = {str: "text", bool: "true or false", dict: "a JSON object", list: "a JSON list"}


def lax_bool(value: Any) -> bool:
    """A yes/no as people and pages send it: true/false, 1/0, or "on", "yes", "false"..."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("must be true or false")
