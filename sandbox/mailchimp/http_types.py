"""The request and response values that pass between the HTTP server and the emulated APIs,
so that the APIs know nothing about sockets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
PROBLEM_CONTENT_TYPE = "application/problem+json; charset=utf-8"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""

    def header(self, name: str) -> str:
        """Case-insensitive header lookup ("" when absent)."""
        value = self.headers.get(name)
        if value is None:
            lowered = name.lower()
            value = next((v for k, v in self.headers.items() if k.lower() == lowered), "")
        return value


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON_CONTENT_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)
    # Set by the timeout fault: close the connection without answering, as an upstream
    # that hung and was cut off does.
    drop_connection: bool = False


def dump_json(document: Any) -> str:
    """Compact JSON, as Mailchimp sends it."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def json_response(document: Any, status: int = 200, content_type: str = JSON_CONTENT_TYPE) -> Response:
    return Response(status=status, body=dump_json(document).encode(), content_type=content_type)


def empty_response(status: int = 204) -> Response:
    return Response(status=status, body=b"", content_type="")


def parse_json_body(body: bytes) -> Any:
    """The decoded body, or raises ValueError (the caller maps it to its API's error shape)."""
    if not body.strip():
        return {}
    return json.loads(body)
