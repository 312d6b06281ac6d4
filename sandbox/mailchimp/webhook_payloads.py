"""What a member change looks like on the wire to an audience webhook: which event types it
fires and the form fields Mailchimp posts for each (``type``, ``fired_at``, ``data[...]``),
in the order Mailchimp sends them.

The field sets follow Mailchimp's webhook documentation and captured deliveries: member
events carry the member (``data[id]``, ``data[email]``, ``data[merges][...]`` with
``INTERESTS`` and ``GROUPINGS`` where the audience has interest groups); ``upemail``,
``cleaned`` and ``campaign`` carry only their own few fields.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sandbox.mailchimp.audiences import Audience

Fields = list[tuple[str, str]]


@dataclass(frozen=True)
class ChangeDetails:
    """What a change cannot tell by itself: why a member left, and which campaign it was."""

    reason: str | None = None  # unsubscribe: manual | abuse; cleaned: hard | abuse
    campaign_id: str = ""


@dataclass(frozen=True)
class WebhookEvent:
    type: str
    fields: Fields

    def body(self) -> bytes:
        """application/x-www-form-urlencoded, as Mailchimp posts it."""
        return urlencode(self.fields).encode()


def fired_at(epoch_seconds: float) -> str:
    """Mailchimp's ``fired_at``: UTC, "YYYY-MM-DD HH:MM:SS"."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch_seconds))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _nested(prefix: str, value: Any) -> Fields:
    """PHP-style nested keys: an address merge field becomes data[merges][ADDRESS][city]."""
    if isinstance(value, dict):
        return [field for key, item in value.items() for field in _nested(f"{prefix}[{key}]", item)]
    return [(prefix, _text(value))]


def _groupings(audience: Audience, member: dict[str, Any]) -> Fields:
    """One GROUPINGS entry per interest category, with the chosen interests' names; INTERESTS
    repeats the first category's (a leftover of the days of one grouping per list)."""
    if not audience.interest_categories:
        return []
    chosen = {interest_id for interest_id, on in member.get("interests", {}).items() if on}
    fields: Fields = []
    for index, category in enumerate(audience.interest_categories):
        groups = ", ".join(interest["name"] for interest in category["interests"] if interest["id"] in chosen)
        if index == 0:
            fields.append(("data[merges][INTERESTS]", groups))
        prefix = f"data[merges][GROUPINGS][{index}]"
        fields += [
            (f"{prefix}[id]", _text(category["grouping_id"])),
            (f"{prefix}[unique_id]", category["id"]),
            (f"{prefix}[name]", category["title"]),
            (f"{prefix}[groups]", groups),
        ]
    return fields


def _merges(audience: Audience, member: dict[str, Any]) -> Fields:
    fields: Fields = [("data[merges][EMAIL]", member["email_address"])]
    values = member["merge_fields"]
    for merge_field in audience.merge_fields:
        tag = merge_field["tag"]
        fields += _nested(f"data[merges][{tag}]", values.get(tag, ""))
    return fields + _groupings(audience, member)


def _member_data(audience: Audience, member: dict[str, Any]) -> Fields:
    fields: Fields = [
        ("data[id]", member["id"]),
        ("data[email]", member["email_address"]),
        ("data[email_type]", member["email_type"]),
        ("data[ip_opt]", member["ip_opt"]),
    ]
    if member["ip_signup"]:
        fields.append(("data[ip_signup]", member["ip_signup"]))
    fields.append(("data[web_id]", _text(member["web_id"])))
    return fields + _merges(audience, member) + [("data[list_id]", audience.id)]


def _event(event_type: str, at: str, data: Fields) -> WebhookEvent:
    return WebhookEvent(event_type, [("type", event_type), ("fired_at", at), *data])


def subscribe_event(audience: Audience, member: dict[str, Any], at: str) -> WebhookEvent:
    return _event("subscribe", at, _member_data(audience, member))


def profile_event(audience: Audience, member: dict[str, Any], at: str) -> WebhookEvent:
    return _event("profile", at, _member_data(audience, member))


def unsubscribe_event(
    audience: Audience, member: dict[str, Any], action: str, details: ChangeDetails, at: str
) -> WebhookEvent:
    """``action`` is ``unsub`` (the person left) or ``delete`` (the member was deleted)."""
    data: Fields = [("data[action]", action), ("data[reason]", details.reason or "manual")]
    data += _member_data(audience, member)
    data.append(("data[campaign_id]", details.campaign_id))
    return _event("unsubscribe", at, data)


def upemail_event(audience: Audience, old: dict[str, Any], new: dict[str, Any], at: str) -> WebhookEvent:
    return _event(
        "upemail",
        at,
        [
            ("data[list_id]", audience.id),
            ("data[new_id]", new["id"]),
            ("data[new_email]", new["email_address"]),
            ("data[old_email]", old["email_address"]),
        ],
    )


def cleaned_event(audience: Audience, member: dict[str, Any], details: ChangeDetails, at: str) -> WebhookEvent:
    return _event(
        "cleaned",
        at,
        [
            ("data[list_id]", audience.id),
            ("data[campaign_id]", details.campaign_id),
            ("data[reason]", details.reason or "hard"),
            ("data[email]", member["email_address"]),
        ],
    )


def campaign_event(list_id: str, campaign_id: str, subject: str, status: str, reason: str, at: str) -> WebhookEvent:
    return _event(
        "campaign",
        at,
        [
            ("data[id]", campaign_id),
            ("data[subject]", subject),
            ("data[status]", status),
            ("data[reason]", reason),
            ("data[list_id]", list_id),
        ],
    )


def _profile(member: dict[str, Any]) -> tuple[Any, ...]:
    return (member["merge_fields"], member.get("interests", {}), member["email_type"])


def member_events(
    audience: Audience,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    details: ChangeDetails,
    at: str,
) -> list[WebhookEvent]:
    """The webhook events one stored change fires (``before`` None: created; ``after`` None:
    permanently deleted). A status change fires its status event only, with the new merges."""
    if after is None:
        if before is not None and before["status"] == "subscribed":
            return [unsubscribe_event(audience, before, "delete", details, at)]
        return []
    old_status = before["status"] if before is not None else None
    new_status = after["status"]
    if old_status != new_status:
        if new_status == "subscribed":
            return [subscribe_event(audience, after, at)]
        if new_status == "unsubscribed" and old_status == "subscribed":
            return [unsubscribe_event(audience, after, "unsub", details, at)]
        if new_status == "archived" and old_status == "subscribed":
            return [unsubscribe_event(audience, after, "delete", details, at)]
        if new_status == "cleaned" and old_status not in (None, "archived"):
            return [cleaned_event(audience, after, details, at)]
        return []
    if before is None or new_status == "archived":
        return []
    events: list[WebhookEvent] = []
    if before["id"] != after["id"]:
        events.append(upemail_event(audience, before, after, at))
    if _profile(before) != _profile(after):
        events.append(profile_event(audience, after, at))
    return events
