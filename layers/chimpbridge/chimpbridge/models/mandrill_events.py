"""Mandrill (Mailchimp Transactional) webhooks: the delivery as the receiver reads it, the batch
it queues for the worker, and the event published on the bus (its detail is a public contract:
docs/events/email-*.schema.json and docs/mandrill-webhooks.md).

The detail is versioned by ``schema_version``: members are only ever added within a version;
renaming or removing one, or changing its meaning, makes a new version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EVENT_SOURCE = "chimpbridge.mandrill"
SIGNATURE_HEADER = "X-Mandrill-Signature"
EVENTS_FIELD = "mandrill_events"
# Mandrill's "send test" and its second check of a new URL: an empty list signed with this key.
TEST_WEBHOOK_KEY = "test-webhook"

MessageEventKind = Literal[
    "send", "deferral", "hard_bounce", "soft_bounce", "delivered", "open", "click", "spam", "unsub", "reject"
]
SyncEventKind = Literal["blacklist", "whitelist"]
# Mandrill's event (message events) or type (sync events) -> the detail-type on the bus.
DETAIL_TYPES: dict[str, str] = {
    "send": "Email Sent",
    "deferral": "Email Deferred",
    "delivered": "Email Delivered",
    "soft_bounce": "Email Soft Bounced",
    "hard_bounce": "Email Bounced",
    "open": "Email Opened",
    "click": "Email Clicked",
    "spam": "Email Complained",
    "unsub": "Email Unsubscribed",
    "reject": "Email Rejected",
    "blacklist": "Email Denylist Changed",
    "whitelist": "Email Allowlist Changed",
}
# What the latest event says about a message (the email record's ``state``).
STATES: dict[str, str] = {
    "send": "sent",
    "deferral": "deferred",
    "delivered": "delivered",
    "soft_bounce": "soft_bounced",
    "hard_bounce": "bounced",
    "open": "opened",
    "click": "clicked",
    "spam": "complained",
    "unsub": "unsubscribed",
    "reject": "rejected",
}
# Events of one second (Mandrill's ts) are ordered by what they mean: a bounce stamped in the
# same second as its send is the message's state, whichever batch brought it.
STATE_RANK: dict[str, int] = {
    "send": 1,
    "deferral": 2,
    "soft_bounce": 3,
    "delivered": 4,
    "open": 5,
    "click": 6,
    "hard_bounce": 7,
    "reject": 8,
    "spam": 9,
    "unsub": 10,
}


class MandrillDelivery(BaseModel):
    """One HTTP request to ``/webhooks/mandrill``, unchecked. ``called_url``: where API Gateway
    was called (scheme, domain, stage and path, no query string); Mandrill signs the configured
    URL when there is one (logic/mandrill_webhook.py)."""

    model_config = ConfigDict(frozen=True)

    called_url: str
    signature: str | None = None
    request_id: str | None = None
    content_type: str | None = None


class MandrillWebhookAnswer(BaseModel):
    """The 200 answer: how many events were queued, in how many queue messages."""

    status: Literal["queued", "ok"]
    events: int = 0
    messages: int = 0


class QueuedEvents(BaseModel):
    """One message on the Mandrill events queue: a slice of a delivery, in Mandrill's format.
    A delivery of 1,000 events becomes several of these (an SQS message holds 256 KiB)."""

    version: Literal[1] = 1
    request_id: str | None = None
    received_at: datetime
    events: list[dict[str, Any]]


class MandrillEventDetail(BaseModel):
    """The ``detail`` of every ``chimpbridge.mandrill`` event, normalised as django-anymail
    normalises Mandrill's events. Members an event does not carry are left out (never null)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    # The same for every delivery of one Mandrill event (_id, event, ts): EventBridge and
    # Mandrill deliver at least once, so consumers deduplicate on it.
    event_id: str
    event: str  # Mandrill's event (message events) or type (sync events)
    timestamp: datetime  # Mandrill's ts, UTC
    email: str | None = None  # the recipient (sync events: the list entry's address)
    mandrill_id: str | None = None  # _id: the recipient's message id, as the send answered it
    state: str | None = None  # msg.state: Mandrill's state of the message after the event
    subject: str | None = None
    sender: str | None = None
    template: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    # What we attach to every send (logic/email_content.py), when the metadata carries it.
    identity_id: str | None = None
    hook: str | None = None
    idempotency_key: str | None = None
    # Bounces, rejections, deferrals
    reject_reason: str | None = None  # msg.bounce_description, or the rejection's reason
    diagnostic: str | None = None  # msg.diag: the receiving server's answer
    # Opens and clicks
    user_agent: str | None = None
    ip: str | None = None
    url: str | None = None  # the clicked link
    # Sync events (denylist, allowlist)
    action: str | None = None  # add, remove, change
    detail: str | None = None  # the list entry's detail text

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


class MandrillEvent(BaseModel):
    """One normalised event and what the worker does with it."""

    model_config = ConfigDict(frozen=True)

    detail_type: str
    detail: MandrillEventDetail
    # Suppression reason when the event marks the address (hard bounce, complaint...), else None.
    suppress_reason: str | None = None
    recipient_hash: str | None = None


class BatchOutcome(BaseModel):
    """What the worker did with one queued slice."""

    events: int = 0
    processed: int = 0
    duplicates: int = 0
    ignored: int = 0
    suppressed: int = 0
    kinds: dict[str, int] = Field(default_factory=dict)
