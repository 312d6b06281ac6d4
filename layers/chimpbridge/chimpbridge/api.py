"""``create_app()``: the router every HTTP function uses (API Gateway REST, proxy integration),
and the one place where domain errors become HTTP answers.

Every error body is RFC 7807 ``application/problem+json`` with a stable ``type``. What reaches
the client describes their request, never our internals: upstream texts, tracebacks and keys
stay in the logs, tied to the answer by its ``correlation_id``.

Each function serves one or two explicit routes, so routing, CORS and error mapping are done
here rather than by Powertools' event handler: importing that package loads every resolver it
has (AppSync, Bedrock agents, VPC Lattice...) and asyncio, which costs the signup function's
cold start more than it costs to read two paths (docs/benchmarks.md, "Cold start of every function").
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from chimpbridge import settings
from chimpbridge.errors import (
    Busy,
    ConfigurationError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PublishFailed,
    Rejected,
    TooManyAttempts,
    Unauthorized,
    UnsupportedMediaType,
    UpstreamError,
)
from chimpbridge.observability import count, logger

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:chimpbridge:problem:"
CORS_ALLOW_HEADERS = "Authorization,Content-Type,X-Amz-Date,X-Amz-Security-Token,X-Api-Key"
CORS_MAX_AGE_SECONDS = 600


@dataclass
class Response:
    status_code: int
    body: str = ""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(data, separators=(",", ":")), headers=dict(headers or {}))


class Request:
    """The parts of an API Gateway proxy event a route reads."""

    def __init__(self, event: Mapping[str, Any]) -> None:
        self.event = event
        self.method = str(event.get("httpMethod") or "GET").upper()
        self.path = str(event.get("path") or "/")
        self._headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
        context = event.get("requestContext") or {}
        identity = context.get("identity") or {}
        self.request_id: str | None = context.get("requestId")
        self.source_ip: str | None = identity.get("sourceIp")
        self.user_agent: str | None = self.header("User-Agent") or identity.get("userAgent")

    def header(self, name: str) -> str | None:
        """A request header; names are case-insensitive, as in HTTP."""
        return self._headers.get(name.lower())

    def body(self) -> bytes:
        """The body as sent; routes read it only when they are ready to (after authentication)."""
        raw = self.event.get("body") or ""
        if not self.event.get("isBase64Encoded"):
            return str(raw).encode()
        try:
            return base64.b64decode(raw, validate=True)
        except binascii.Error:
            raise InvalidRequest("The request body is not valid base64.") from None


Handler = Callable[..., Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class App:
    """Routes by method and path (``/hooks/<hook>``: the parameter is passed by name).

    ``never_answer``: statuses this app must never send, whatever a route or an error does;
    such an answer becomes a generic 500 (logged). Mailchimp disables an audience webhook for
    good when it answers 410, so its receiver rules 410 out here, in one place.
    """

    def __init__(self, *, never_answer: Iterable[int] = ()) -> None:
        self.routes: list[Route] = []
        self.never_answer = frozenset(never_answer)

    def get(self, path: str) -> Callable[[Handler], Handler]:
        return self.route("GET", path)

    def head(self, path: str) -> Callable[[Handler], Handler]:
        return self.route("HEAD", path)

    def post(self, path: str) -> Callable[[Handler], Handler]:
        return self.route("POST", path)

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        pattern = re.compile("^" + re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", path) + "$")

        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, pattern, handler))
            return handler

        return register

    def resolve(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        """The proxy integration's answer to ``event`` (``context`` is Lambda's, unused)."""
        cors: dict[str, str] = {}
        try:
            request = Request(event)
            cors = _cors_headers(request)
            response = self._dispatch(request)
        except Exception as exc:  # noqa: BLE001 - every error becomes a problem answer; see answer_error
            response = answer_error(exc, (event.get("requestContext") or {}).get("requestId"))
        if response.status_code in self.never_answer:
            logger.error("an answer this endpoint must never send was replaced", extra={"status": response.status_code})
            response = _server_problem(None, logger.get_correlation_id() or "unknown")
        return _proxy_result(response, cors)

    def _dispatch(self, request: Request) -> Response:
        matches = [(route, route.pattern.match(request.path)) for route in self.routes]
        on_path = [(route, match) for route, match in matches if match is not None]
        for route, match in on_path:
            if route.method == request.method:
                return route.handler(request, **match.groupdict())
        if request.method == "OPTIONS" and on_path and settings.load(settings.ApiSettings).allowed_origins:
            methods = sorted({route.method for route, _ in on_path} | {"OPTIONS"})
            return Response(204, content_type="text/plain", headers={"Access-Control-Allow-Methods": ",".join(methods)})
        return not_found()


def create_app(*, never_answer: Iterable[int] = ()) -> App:
    return App(never_answer=never_answer)


def problem(
    status: int, slug: str, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    """An RFC 7807 answer. ``slug`` makes the stable ``type``; ``extra`` adds members."""
    body = {"type": PROBLEM_TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail, **extra}
    return Response(status, json.dumps(body, separators=(",", ":")), PROBLEM_CONTENT_TYPE, dict(headers or {}))


def not_found() -> Response:
    """One answer for an unknown path and for a hidden one (a webhook URL with a wrong token)."""
    return problem(404, "not-found", "Not Found", "No such resource.")


# Errors about the request itself, whose detail is written for the person who sent it.
REQUEST_PROBLEMS: dict[type[InvalidRequest], tuple[int, str, str]] = {
    PayloadTooLarge: (413, "payload-too-large", "Content Too Large"),
    UnsupportedMediaType: (415, "unsupported-media-type", "Unsupported Media Type"),
}


def answer_error(exc: Exception, request_id: str | None) -> Response:
    """The answer for an error a route raised: what the client can act on, nothing internal."""
    for kind, (status, slug, title) in REQUEST_PROBLEMS.items():  # before InvalidRequest: kinds of it
        if isinstance(exc, kind):
            return problem(status, slug, title, exc.detail)
    if isinstance(exc, InvalidRequest):
        errors = [{"field": err.field, "message": err.message} for err in exc.errors]
        return problem(422, "invalid-request", "Invalid request", exc.detail, errors=errors)
    if isinstance(exc, Unauthorized):
        count("Unauthorized")
        return problem(401, "unauthorized", "Unauthorized", "Missing or invalid credentials.")
    if isinstance(exc, Rejected | Busy | NotFound):
        return _refusal(exc)
    if isinstance(exc, TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after_seconds)}
        return problem(429, exc.kind, "Too Many Requests", exc.message, headers=headers)
    return _server_problem(exc, logger.get_correlation_id() or request_id or "unknown")


def _refusal(exc: Rejected | Busy | NotFound) -> Response:
    """A well-formed request we will not do: now (busy), at all (rejected), or for this caller."""
    if isinstance(exc, Rejected):
        return problem(422, exc.kind, HTTPStatus(422).phrase, exc.message, **exc.extra)
    if isinstance(exc, Busy):
        # 429 is what webhook senders (Ory Kratos and Mailchimp among them) retry after a pause.
        headers = {"Retry-After": str(exc.retry_after_seconds)}
        return problem(429, "busy", "Too Many Requests", exc.message, headers=headers)
    return not_found()


def _server_problem(exc: Exception | None, correlation_id: str) -> Response:
    """Our side failed: the client gets a generic answer and the logs get the cause."""
    if isinstance(exc, PublishFailed):
        logger.error("event not published", extra={"error": exc.summary})
        return problem(
            503,
            "publish-failed",
            "Service Unavailable",
            "The event could not be recorded. Please deliver it again later.",
            correlation_id=correlation_id,
        )
    if isinstance(exc, UpstreamError):
        log = logger.warning if exc.transient else logger.error  # a passing failure calls nobody
        log("upstream failure", extra={"error": str(exc), "transient": exc.transient})
        status = 503 if exc.transient else 502
        return problem(
            status,
            "upstream-unavailable" if exc.transient else "upstream-error",
            HTTPStatus(status).phrase,
            "Mailchimp could not complete the request. Please try again later.",
            correlation_id=correlation_id,
        )
    if isinstance(exc, ConfigurationError):
        logger.error("configuration error", extra={"error": str(exc)})
    elif exc is not None:
        logger.exception("unhandled error")
    return problem(
        500,
        "internal-error",
        "Internal Server Error",
        "Something went wrong on our side. Quote the correlation id if you contact support.",
        correlation_id=correlation_id,
    )


def _cors_headers(request: Request) -> dict[str, str]:
    """CORS headers for a request from one of ``ALLOWED_ORIGINS`` (or any, with ``*``). With
    origins configured, every answer varies by Origin, so caches keep them apart."""
    allowed = settings.load(settings.ApiSettings).allowed_origins
    if not allowed:
        return {}
    origin = request.header("Origin")
    if not origin or (origin not in allowed and "*" not in allowed):
        return {"Vary": "Origin"}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
        "Access-Control-Max-Age": str(CORS_MAX_AGE_SECONDS),
        "Vary": "Origin",
    }


def _proxy_result(response: Response, cors: dict[str, str]) -> dict[str, Any]:
    headers = {"Content-Type": response.content_type, **cors, **response.headers}
    return {
        "statusCode": response.status_code,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "body": response.body,
        "isBase64Encoded": False,
    }
