"""Mailchimp audience webhooks: the delivery as the handler read it, the event published on the
bus (its detail is a public contract: docs/events/*.schema.json), and the answer to Mailchimp.

The detail is versioned by ``schema_version``: members are only ever added within a version;
renaming or removing one, or changing its meaning, makes a new version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

EVENT_SOURCE = "chimpbridge.mailchimp"
SCHEMA_VERSION = 1
SIGNATURE_HEADER = "X-Mailchimp-Signature"

MailchimpType = Literal["subscribe", "unsubscribe", "profile", "upemail", "cleaned", "campaign"]
# Mailchimp's webhook ``type`` -> the event's detail-type on the bus.
DETAIL_TYPES: dict[str, str] = {
    "subscribe": "Member Subscribed",
    "unsubscribe": "Member Unsubscribed",
    "profile": "Member Profile Updated",
    "upemail": "Member Email Changed",
    "cleaned": "Member Cleaned",
    "campaign": "Campaign Sent",
}


class WebhookDelivery(BaseModel):
    """One HTTP request to ``/webhooks/mailchimp/{token}``, unchecked: building it never fails
    before the caller is authenticated (the logic checks it after). The body is not in it: the
    logic reads it through its own argument once the token is checked."""

    model_config = ConfigDict(frozen=True)

    token: SecretStr
    signature: str | None = None  # X-Mailchimp-Signature, as sent
    request_id: str | None = None


class Grouping(BaseModel):
    """An interest category and the groups (by name) the member is in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str | None = None
    unique_id: str | None = None
    name: str | None = None
    groups: list[str] = Field(default_factory=list)


class AudienceEventDetail(BaseModel):
    """The ``detail`` of every ``chimpbridge.mailchimp`` event. Members a kind of event does
    not have are left out (never null); docs/events/ says which each detail-type carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1  # SCHEMA_VERSION
    # The same for every event about one change: EventBridge delivers at least once, and a
    # publish whose answer was lost is published again, so consumers deduplicate on this.
    change_id: str
    mailchimp_type: MailchimpType
    list_id: str
    fired_at: datetime  # UTC, ISO 8601 with Z
    # The sources the webhook listens to: the change was made by one of them (Mailchimp's
    # payload does not say which).
    webhook_sources: list[str]
    # Member events (all but campaign)
    email: str | None = None
    subscriber_hash: str | None = None  # md5 of the lowercased email: the member's id in the API
    member_id: str | None = None  # data[id] (upemail: data[new_id])
    web_id: int | None = None  # the member's page in the Mailchimp app
    email_type: str | None = None
    merge_fields: dict[str, Any] | None = None  # data[merges] without INTERESTS and GROUPINGS
    interests: list[str] | None = None  # group names of data[merges][INTERESTS]
    groupings: list[Grouping] | None = None  # data[merges][GROUPINGS]
    ip_signup: str | None = None
    ip_opt: str | None = None
    # unsubscribe: unsub | delete; cleaned: -
    action: str | None = None
    # unsubscribe: manual, abuse...; cleaned: hard | abuse; campaign: Mailchimp's text, if any
    reason: str | None = None
    campaign_id: str | None = None
    # upemail
    old_email: str | None = None
    new_email: str | None = None
    old_subscriber_hash: str | None = None
    # campaign
    subject: str | None = None
    status: str | None = None

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


class AudienceEvent(BaseModel):
    """One event to publish, with the key that makes its repeated deliveries one event:
    (type, list, member or campaign, fired_at)."""

    model_config = ConfigDict(frozen=True)

    detail_type: str
    detail: AudienceEventDetail
    dedupe_key: str


class WebhookAnswer(BaseModel):
    """The 200 answer to a delivery. ``duplicate``: this delivery was already published."""

    status: Literal["published", "ignored", "ok"]
    type: str | None = None
    detail_type: str | None = None
    event_id: str | None = None
    duplicate: bool = False
