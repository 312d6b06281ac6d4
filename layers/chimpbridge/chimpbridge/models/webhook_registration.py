"""The ``Custom::MailchimpWebhooks`` resource: what the template asks for (its properties), and
what the registration did (the resource's attributes).

CloudFormation hands properties over as text (lists of text), whatever the template wrote.
The webhook token is never a property: ``TokenSecretArn`` names the secret it is read from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Mailchimp's event types; the registration turns every one of them on.
WEBHOOK_EVENTS = ("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign")
WEBHOOK_SOURCES = ("user", "admin", "api")
_LIST_ID = re.compile(r"^[0-9a-zA-Z]{1,50}$")


@dataclass(frozen=True, kw_only=True)
class WebhookRegistration:
    """One audience webhook per audience, at ``url_prefix`` + the current token.

    ``url_prefix`` is the receiver's public URL up to the token (``.../webhooks/mailchimp/``):
    every webhook of an audience whose URL starts with it is this stack's, whatever token it
    carries, so a token rotation or a re-run finds (and adopts) what is already there.
    """

    audiences: tuple[str, ...]
    url_prefix: str
    sources: tuple[str, ...]
    token_secret_arn: str
    revision: str = ""
    # The physical id of the resource, for the log lines of one registration.
    resource_id: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.audiences:
            raise ValueError("Audiences must name at least one audience id")
        bad = [audience for audience in self.audiences if not _LIST_ID.match(audience)]
        if bad:
            raise ValueError("Audiences must be Mailchimp audience ids, such as a1b2c3d4e5")
        if not re.match(r"^https?://[^/]+/", self.url_prefix) or not self.url_prefix.endswith("/"):
            raise ValueError("Url must be an http(s) URL ending in / (the token is appended)")
        if not self.sources or set(self.sources) - set(WEBHOOK_SOURCES):
            raise ValueError("Sources must be a list of " + ", ".join(WEBHOOK_SOURCES))
        if not self.token_secret_arn:
            raise ValueError("TokenSecretArn must name the webhook token secret")

    @classmethod
    def from_properties(cls, properties: Any, resource_id: str = "") -> WebhookRegistration:
        """The registration from a custom resource's ``ResourceProperties``; raises ValueError
        naming the property."""
        if not isinstance(properties, dict):
            raise ValueError("the resource has no properties")
        return cls(
            audiences=_unique(_text_list(properties, "Audiences")),
            url_prefix=_text(properties, "Url"),
            sources=_unique(_text_list(properties, "Sources")),
            token_secret_arn=_text(properties, "TokenSecretArn"),
            revision=str(properties.get("Revision") or ""),
            resource_id=resource_id,
        )

    @classmethod
    def previous(cls, properties: Any) -> WebhookRegistration | None:
        """What an earlier request asked for, or None where that was malformed. A request refused
        for its properties registered nothing, and its rollback (an update back, or the delete of
        a failed create) must not fail on the same properties: the stack would be stuck."""
        try:
            return cls.from_properties(properties)
        except ValueError:
            return None

    def url(self, token: str) -> str:
        return self.url_prefix + token

    def owns(self, url: str) -> bool:
        return url.startswith(self.url_prefix) and len(url) > len(self.url_prefix)

    def settings(self) -> dict[str, Any]:
        """The ``events`` and ``sources`` of the webhook body: every event, the chosen sources."""
        return {
            "events": dict.fromkeys(WEBHOOK_EVENTS, True),
            "sources": {source: source in self.sources for source in WEBHOOK_SOURCES},
        }


@dataclass(frozen=True, kw_only=True)
class RegistrationResult:
    """What one request did, per audience: the webhook ids now in place, and what was removed.
    ``waiting`` says why nothing could be registered yet (the Mailchimp key is a placeholder)."""

    webhooks: dict[str, str] = field(default_factory=dict)  # audience -> webhook id
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    waiting: str = ""

    def attributes(self) -> dict[str, str]:
        """The resource's attributes (``!GetAtt MailchimpWebhooks.<name>``), all text."""
        status = f"waiting: {self.waiting}" if self.waiting else "registered"
        return {
            "Status": status,
            "Audiences": ",".join(sorted(self.webhooks)),
            "WebhookIds": ",".join(self.webhooks[audience] for audience in sorted(self.webhooks)),
        }


def _text(properties: dict[str, Any], name: str) -> str:
    value = properties.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be text")
    return value.strip()


def _text_list(properties: dict[str, Any], name: str) -> list[str]:
    value = properties.get(name)
    if isinstance(value, str):  # a comma separated list passed as one string
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} must be a list of text")
    return [item.strip() for item in value if item.strip()]


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
