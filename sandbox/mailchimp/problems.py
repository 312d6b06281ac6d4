"""Error bodies of both APIs: RFC 7807 problem documents for Marketing, and Mandrill's
``{"status": "error", "code", "name", "message"}`` for Transactional."""

from __future__ import annotations

import uuid
from typing import Any

from sandbox.mailchimp.http_types import JSON_CONTENT_TYPE, PROBLEM_CONTENT_TYPE, Response, json_response

MAILCHIMP_ERROR_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"

# Titles Mailchimp uses for statuses that carry no more specific title.
MARKETING_TITLES: dict[int, str] = {
    400: "Invalid Resource",
    401: "API Key Invalid",
    403: "Forbidden",
    404: "Resource Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    414: "Resource Nesting Too Deep",
    422: "Invalid Method Override",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

MARKETING_DETAILS: dict[int, str] = {
    404: "The requested resource could not be found.",
    405: "The requested method and resource are not compatible. See the Allow header for this "
    "resource's available methods.",
    408: "The request took too long to arrive. Please try again.",
    429: "You have exceeded the limit of 10 simultaneous connections.",
    500: "An unexpected internal error has occurred. Please contact Support for more information.",
    502: "The server received an invalid response from an upstream server.",
    503: "The service is temporarily unavailable. Please try again later.",
    504: "The server did not receive a timely response from an upstream server.",
}

VALIDATION_DETAIL = "The resource submitted could not be validated. For field-specific details, see the 'errors' array."


class MarketingError(Exception):
    """Raised anywhere in the Marketing API; the router turns it into a problem document."""

    def __init__(
        self,
        status: int,
        title: str | None = None,
        detail: str | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        self.status = status
        self.title = title or MARKETING_TITLES.get(status, "Error")
        self.detail = detail or MARKETING_DETAILS.get(status, self.title)
        self.errors = errors
        super().__init__(f"{status} {self.title}: {self.detail}")


def invalid_field(field: str, message: str) -> MarketingError:
    return MarketingError(400, detail=VALIDATION_DETAIL, errors=[{"field": field, "message": message}])


def problem_response(error: MarketingError) -> Response:
    document: dict[str, Any] = {
        "type": MAILCHIMP_ERROR_TYPE,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "instance": str(uuid.uuid4()),
    }
    if error.errors is not None:
        document["errors"] = error.errors
    return json_response(document, error.status, PROBLEM_CONTENT_TYPE)


# Mandrill error names and their numeric codes (from the official OpenAPI 3.1 examples).
MANDRILL_ERROR_CODES: dict[str, int] = {
    "Invalid_Key": 401,
    "ValidationError": -2,
    "Unknown_Template": 5,
    "Invalid_Template": 6,
    "Invalid_Reject": 12,
    "Unknown_Webhook": 3,
    "Unknown_Method": -1,
    "RequestLimitExceeded": 429,
    "GeneralError": -1,
    "ServiceUnavailable": -1,
}


class MandrillError(Exception):
    """Raised anywhere in the Transactional API; the router turns it into Mandrill's error body."""

    def __init__(self, http_status: int, name: str, message: str) -> None:
        self.http_status = http_status
        self.name = name
        self.message = message
        super().__init__(f"{http_status} {name}: {message}")


def mandrill_error_response(error: MandrillError) -> Response:
    document = {
        "status": "error",
        "code": MANDRILL_ERROR_CODES.get(error.name, -1),
        "name": error.name,
        "message": error.message,
    }
    return json_response(document, error.http_status, JSON_CONTENT_TYPE)


def mandrill_fault_error(status: int) -> MandrillError:
    """The body Mandrill sends for an injected transient failure of the given status."""
    if status == 429:
        return MandrillError(429, "RequestLimitExceeded", "Too Many Requests attempted recently")
    if status == 503:
        return MandrillError(503, "ServiceUnavailable", "Service temporarily unavailable")
    return MandrillError(
        status, "GeneralError", "An unknown error occurred processing your request. Please try again later."
    )
