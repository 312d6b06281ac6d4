"""Audience webhooks as the Marketing API stores them (``/lists/{list_id}/webhooks``): the
request bodies, the spec's document shape, and the GET that validates a URL when it is saved.

Sandbox extension: a webhook may carry a signing ``secret`` (in the create or update body,
or set through the control API). Mailchimp's audience webhooks are not signed; the sandbox
signs deliveries of such webhooks so that a receiver's signature check can be exercised.
The secret never appears in the Marketing API's answers, which keep the spec's shape.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from sandbox.mailchimp.problems import VALIDATION_DETAIL, MarketingError, invalid_field

EVENT_TYPES = ("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign")
SOURCES = ("user", "admin", "api")
VALIDATOR_USER_AGENT = "MailChimp.com WebHook Validator"


@dataclass
class Webhook:
    id: str
    list_id: str
    url: str
    events: dict[str, bool]
    sources: dict[str, bool]
    secret: str | None = None
    enabled: bool = True
    # Why the sandbox stopped delivering (for example the receiver answered 410 Gone).
    disabled_reason: str = ""
    created_at: int = field(default_factory=lambda: int(time.time()))

    def wants(self, event_type: str, source: str) -> bool:
        """Campaign events are "all or nothing": Mailchimp cannot limit them by source."""
        if not self.enabled or not self.events.get(event_type, False):
            return False
        return event_type == "campaign" or self.sources.get(source, False)

    def document(self, base_url: str) -> dict[str, Any]:
        """The spec's "List Webhooks" shape, links as the rest of the sandbox renders them."""
        collection = f"{base_url}/3.0/lists/{self.list_id}/webhooks"
        url = f"{collection}/{self.id}"
        return {
            "id": self.id,
            "url": self.url,
            "events": dict(self.events),
            "sources": dict(self.sources),
            "list_id": self.list_id,
            "_links": [
                {"rel": "self", "href": url, "method": "GET"},
                {"rel": "parent", "href": collection, "method": "GET"},
                {"rel": "update", "href": url, "method": "PATCH"},
                {"rel": "delete", "href": url, "method": "DELETE"},
            ],
        }

    def control_document(self, base_url: str) -> dict[str, Any]:
        """What the control API shows: the Marketing document plus the sandbox's own state."""
        return {
            **self.document(base_url),
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "signed": self.secret is not None,
        }


def new_webhook_id() -> str:
    return secrets.token_hex(5)


def _flags(body: dict[str, Any], name: str, names: tuple[str, ...], current: dict[str, bool] | None) -> dict[str, bool]:
    """events/sources: omitted on create means all on; given keys replace, others keep
    their value (false on create)."""
    supplied = body.get(name)
    if supplied is None:
        return dict(current) if current is not None else dict.fromkeys(names, True)
    if not isinstance(supplied, dict):
        raise invalid_field(name, f"Schema describes object, {type(supplied).__name__} found instead")
    flags = dict(current) if current is not None else dict.fromkeys(names, False)
    for key, value in supplied.items():
        if key not in names:
            continue  # Mailchimp ignores fields it does not know
        if not isinstance(value, bool):
            raise invalid_field(f"{name}.{key}", f"Schema describes boolean, {type(value).__name__} found instead")
        flags[key] = value
    return flags


def _checked_url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid_field("url", "This value should not be blank.")
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_field("url", "Please enter a valid URL (http:// or https://).")
    return url


def _checked_secret(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise invalid_field("secret", "The signing secret must be a non-empty string (or null for unsigned).")
    return value


@dataclass(frozen=True)
class WebhookChanges:
    """A create or update body, checked; ``url`` is None when an update leaves it alone."""

    url: str | None
    events: dict[str, bool]
    sources: dict[str, bool]
    secret: str | None
    secret_given: bool


def parse_create(body: dict[str, Any]) -> WebhookChanges:
    return WebhookChanges(
        url=_checked_url(body.get("url")),
        events=_flags(body, "events", EVENT_TYPES, None),
        sources=_flags(body, "sources", SOURCES, None),
        secret=_checked_secret(body.get("secret")),
        secret_given="secret" in body,
    )


def parse_update(body: dict[str, Any], webhook: Webhook) -> WebhookChanges:
    return WebhookChanges(
        url=_checked_url(body["url"]) if "url" in body else None,
        events=_flags(body, "events", EVENT_TYPES, webhook.events),
        sources=_flags(body, "sources", SOURCES, webhook.sources),
        secret=_checked_secret(body.get("secret")),
        secret_given="secret" in body,
    )


def refuse_duplicate(webhooks: dict[str, Webhook], url: str, except_id: str | None = None) -> None:
    if any(hook.url == url and hook.id != except_id for hook in webhooks.values()):
        raise invalid_field("url", "A webhook with this URL already exists on this list.")


def validate_url(url: str, timeout_seconds: float) -> None:
    """Mailchimp GETs the URL when a webhook is saved and refuses it unless the answer is 200.
    Called without the state lock: the receiver may take its time (or call the sandbox)."""
    try:
        response = requests.get(
            url,
            headers={"User-Agent": VALIDATOR_USER_AGENT},
            timeout=timeout_seconds,
            allow_redirects=False,
        )
    except requests.Timeout:
        problem = f"did not answer within {timeout_seconds:g} s"
    except requests.RequestException as error:
        problem = f"could not be reached ({type(error).__name__})"
    else:
        response.close()
        if response.status_code == 200:
            return
        problem = f"answered {response.status_code} to a GET"
    raise MarketingError(
        400,
        detail=VALIDATION_DETAIL,
        errors=[{"field": "url", "message": f"The URL could not be validated: it {problem}; it must answer 200."}],
    )
