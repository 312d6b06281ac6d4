"""``create_app()``: the API Gateway resolver every HTTP function uses, and the one place
where domain errors become HTTP answers.

Every error body is RFC 7807 ``application/problem+json`` with a stable ``type``. What reaches
the client describes their request, never our internals: upstream texts, tracebacks and keys
stay in the logs, tied to the answer by its ``correlation_id``.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from chimpbridge import settings
from chimpbridge.errors import (
    Busy,
    ConfigurationError,
    InvalidRequest,
    PayloadTooLarge,
    Rejected,
    Unauthorized,
    UnsupportedMediaType,
    UpstreamError,
)
from chimpbridge.observability import count, logger

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:chimpbridge:problem:"


def problem(
    status: int, slug: str, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> Response[str]:
    """An RFC 7807 answer. ``slug`` makes the stable ``type``; ``extra`` adds members."""
    body = {"type": PROBLEM_TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail, **extra}
    return Response(
        status_code=status,
        content_type=PROBLEM_CONTENT_TYPE,
        body=json.dumps(body, separators=(",", ":")),
        headers=headers,
    )


def _field_name(location: Any) -> str:
    """Drop the request part ("body", "query") that Powertools puts first."""
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def create_app(*, cors_headers: list[str] | None = None, validate: bool = True) -> APIGatewayRestResolver:
    """A resolver with request validation, CORS for ``ALLOWED_ORIGINS`` and problem answers.

    ``validate=False`` suits routes that read their bodies themselves: Powertools' OpenAPI
    validation then is not imported (about 25 ms of cold start, docs/benchmarks.md).
    """
    origins = settings.load(settings.ApiSettings).allowed_origins
    cors = (
        CORSConfig(allow_origin=origins[0], extra_origins=origins[1:], allow_headers=cors_headers, max_age=600)
        if origins
        else None
    )
    app = APIGatewayRestResolver(cors=cors, enable_validation=validate)

    def correlation_id() -> str:
        return logger.get_correlation_id() or app.current_event.request_context.request_id or "unknown"

    def invalid_schema(exc: RequestValidationError) -> Response[str]:
        errors = [{"field": _field_name(err.get("loc", ())), "message": err.get("msg", "")} for err in exc.errors()]
        return problem(422, "invalid-request", "Invalid request", "Some fields are missing or invalid.", errors=errors)

    def invalid_request(exc: InvalidRequest) -> Response[str]:
        errors = [{"field": err.field, "message": err.message} for err in exc.errors]
        return problem(422, "invalid-request", "Invalid request", exc.detail, errors=errors)

    def too_large(exc: PayloadTooLarge) -> Response[str]:
        return problem(413, "payload-too-large", "Content Too Large", exc.detail)

    def unsupported(exc: UnsupportedMediaType) -> Response[str]:
        return problem(415, "unsupported-media-type", "Unsupported Media Type", exc.detail)

    def unauthorized(exc: Unauthorized) -> Response[str]:
        count("Unauthorized")
        return problem(401, "unauthorized", "Unauthorized", "Missing or invalid credentials.")

    def rejected(exc: Rejected) -> Response[str]:
        return problem(422, exc.kind, HTTPStatus(422).phrase, exc.message, **exc.extra)

    def busy(exc: Busy) -> Response[str]:
        # 429 is what webhook senders (Ory Kratos among them) retry after a pause.
        return problem(
            429, "busy", "Too Many Requests", exc.message, headers={"Retry-After": str(exc.retry_after_seconds)}
        )

    def upstream(exc: UpstreamError) -> Response[str]:
        logger.error("upstream failure", extra={"error": str(exc), "transient": exc.transient})
        status = 503 if exc.transient else 502
        return problem(
            status,
            "upstream-unavailable" if exc.transient else "upstream-error",
            HTTPStatus(status).phrase,
            "Mailchimp could not complete the request. Please try again later.",
            correlation_id=correlation_id(),
        )

    def not_found(exc: NotFoundError) -> Response[str]:
        return problem(404, "not-found", "Not Found", "No such resource.")

    def misconfigured(exc: ConfigurationError) -> Response[str]:
        logger.error("configuration error", extra={"error": str(exc)})
        return _internal_error(correlation_id())

    def unexpected(exc: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return _internal_error(correlation_id())

    app.exception_handler(RequestValidationError)(invalid_schema)
    app.exception_handler(InvalidRequest)(invalid_request)
    app.exception_handler(PayloadTooLarge)(too_large)
    app.exception_handler(UnsupportedMediaType)(unsupported)
    app.exception_handler(Unauthorized)(unauthorized)
    app.exception_handler(Rejected)(rejected)
    app.exception_handler(Busy)(busy)
    app.exception_handler(UpstreamError)(upstream)
    app.exception_handler(ConfigurationError)(misconfigured)
    app.exception_handler(Exception)(unexpected)
    app.not_found(not_found)
    return app


def _internal_error(correlation: str) -> Response[str]:
    return problem(
        500,
        "internal-error",
        "Internal Server Error",
        "Something went wrong on our side. Quote the correlation id if you contact support.",
        correlation_id=correlation,
    )
