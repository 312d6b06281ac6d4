"""Domain exceptions. They carry meaning, never HTTP codes: ``api.py`` maps them to answers.

Upstream failures keep what Mailchimp or Mandrill said (parsed), and whether trying again
later can help (``transient``). Callers decide what to do with that: queue, retry, or give up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ChimpBridgeError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigurationError(ChimpBridgeError):
    """A setting or secret is missing or malformed. Names the variable or secret, not its value."""


@dataclass(frozen=True)
class FieldError:
    """One invalid input field, as shown to the client (``errors`` in problem JSON)."""

    field: str
    message: str


class InvalidRequest(ChimpBridgeError):
    """The caller sent something we cannot accept. Safe to show: it describes their input."""

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class PayloadTooLarge(InvalidRequest):
    """The request body is larger than the endpoint accepts."""


class UnsupportedMediaType(InvalidRequest):
    """The request body comes in a format the endpoint does not read."""


class Unauthorized(ChimpBridgeError):
    """The caller did not prove who it is (missing or wrong key)."""


class NotFound(ChimpBridgeError):
    """What the caller asked for does not exist, or the caller may not learn that it does (a
    webhook URL whose secret token is wrong answers exactly like an unknown path)."""


class PublishFailed(ChimpBridgeError):
    """An event could not be put on the event bus (an error, or an entry EventBridge refused).
    Always worth retrying: nothing was published, and nothing was recorded as published."""

    def __init__(self, summary: str) -> None:
        super().__init__(summary)
        self.summary = summary


class Rejected(ChimpBridgeError):
    """The request is well formed but cannot be done, for a reason the person can act on.

    ``kind`` is stable (it becomes the problem ``type``); ``message`` is written for people.
    """

    def __init__(self, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.extra = extra


class Busy(ChimpBridgeError):
    """The same request is being handled right now; the caller should try again shortly."""

    def __init__(self, message: str, retry_after_seconds: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_seconds = retry_after_seconds


class TooManyAttempts(ChimpBridgeError):
    """One subject (an address) was tried more often than allowed in a window; it may be tried
    again after ``retry_after_seconds``. ``kind`` is stable; ``message`` is written for people."""

    def __init__(self, kind: str, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after_seconds = retry_after_seconds


# Answers that say "not now" rather than "not this": the server did not get the whole request
# in time (408) or is busy (429). Neither is about our configuration or the person.
TRANSIENT_CLIENT_STATUSES = frozenset({408, 429})


def is_transient_status(status: int | None) -> bool:
    """Whether an upstream status can succeed later: no answer at all, 408, 429, or any 5xx."""
    return status is None or status in TRANSIENT_CLIENT_STATUSES or status >= 500


@dataclass(eq=False)
class UpstreamError(ChimpBridgeError):
    """Mailchimp or Mandrill failed. ``status`` is None when no HTTP answer came back."""

    service: str
    status: int | None
    summary: str
    retry_after: float | None = None
    # No answer came back although the request may have arrived: it may have been acted on.
    answer_lost: bool = False

    def __post_init__(self) -> None:
        super().__init__(f"{self.service} {self.status or 'no response'}: {self.summary}")

    @property
    def transient(self) -> bool:
        return is_transient_status(self.status)


@dataclass(eq=False)
class MailchimpApiError(UpstreamError):
    """A Marketing API problem (``application/problem+json``): title, detail, field errors."""

    title: str = ""
    detail: str = ""
    type: str = ""
    instance: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass(eq=False)
class MandrillApiError(UpstreamError):
    """A Transactional API error body: ``{"status": "error", "code", "name", "message"}``."""

    name: str = ""
    message: str = ""
    code: int | None = None


class ExportBusy(ChimpBridgeError):
    """Another run holds the export lock of this audience stream; try again later."""


class ExportInterrupted(ChimpBridgeError):
    """An export stopped on a transient failure; its checkpoint is kept, so a retry resumes it."""


class ExportFailed(ChimpBridgeError):
    """An export cannot finish (bad input, credentials, a vanished audience); it was aborted."""


class ImportBusy(ChimpBridgeError):
    """Another run imports into this audience now (one at a time per audience); try again later."""


class ImportInterrupted(ChimpBridgeError):
    """An import stopped on a transient failure; its checkpoint is kept, so a retry resumes it."""


class ImportFailed(ChimpBridgeError):
    """An import cannot finish (an unreadable file, credentials, a vanished audience)."""


class WebhookRegistrationFailed(ChimpBridgeError):
    """The audience webhooks could not be registered (or removed). The message is written for
    the person reading the CloudFormation event: what went wrong and what to change. It never
    holds the webhook URL (its token is the credential) or a key."""


class MailchimpNotConnected(ConfigurationError):
    """The Mailchimp secret holds the "disconnected" value: the operator disconnected the bundle
    (POST /connect/mailchimp/disconnect) and has not connected it again (docs/connect.md)."""


class ConnectRefused(ChimpBridgeError):
    """A step of connecting to Mailchimp (OAuth) was refused: a bad, replayed, expired or foreign
    state, a used link, a code Mailchimp would not exchange, consent denied. ``kind`` is stable;
    ``message`` is safe to show the operator's browser; nothing was changed."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
