"""Request, response, domain and stored-item models, one module per concern.

Pydantic models, except what the signup function and the secrets it reads need: those are
dataclasses with explicit checks, because importing pydantic would cost that function's cold
start about 0.1 s (docs/benchmarks.md, "Signup cold start").
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def json_members(document: Any, model: type) -> dict[str, Any]:
    """The members of a JSON object that the dataclass ``model`` has, null ones left out."""
    if not isinstance(document, dict):
        raise ValueError(f"a {model.__name__} must be a JSON object")
    names = {item.name for item in fields(model)}
    return {name: value for name, value in document.items() if name in names and value is not None}
