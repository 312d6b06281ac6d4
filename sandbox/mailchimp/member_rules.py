"""Mailchimp's rules for writing a member: address checks, compliance states, forgotten
addresses, required merge fields, and which body fields apply on create versus update."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from sandbox.mailchimp.audiences import Audience
from sandbox.mailchimp.member_documents import (
    build_member,
    empty_location,
    iso_timestamp,
    parse_timestamp,
    subscriber_hash,
)
from sandbox.mailchimp.problems import MarketingError, invalid_field
from sandbox.mailchimp.seeding import WEB_ID_BASE

WRITABLE_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
COMPLIANCE_STATES = ("unsubscribed", "cleaned")
# Domains Mailchimp's signup screening treats as placeholders nobody reads.
FAKE_DOMAINS = ("example.com", "test.com")
# Local parts that trigger the "signed up to a lot of lists very recently" throttle.
TOO_MANY_SIGNUPS_PREFIX = "too-many"
API_SOURCE = "API - Generic"
_EMAIL_PATTERN = re.compile(r"^[^@\s\"<>(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


def member_exists_error(email: str) -> MarketingError:
    return MarketingError(
        400,
        "Member Exists",
        f"{email} is already a list member. Use PUT to insert or update list members.",
    )


def compliance_error(email: str) -> MarketingError:
    return MarketingError(
        400,
        "Member In Compliance State",
        f"{email} is already a list member in compliance state due to unsubscribe, bounce, or "
        "compliance review and cannot be subscribed.",
    )


def forgotten_error(email: str) -> MarketingError:
    return MarketingError(
        400,
        "Forgotten Email Not Subscribed",
        f"{email} was permanently deleted and cannot be re-imported. The contact must re-subscribe "
        "to get back on the list.",
    )


def check_new_address(value: Any) -> str:
    """The address, or the error Mailchimp gives for it."""
    if not isinstance(value, str) or not value.strip():
        raise invalid_field("email_address", "This value should not be blank.")
    email = value.strip()
    if not _EMAIL_PATTERN.match(email):
        raise MarketingError(400, detail="Please provide a valid email address.")
    local_part, domain = email.rsplit("@", 1)
    domain = domain.lower()
    if any(domain == fake or domain.endswith("." + fake) for fake in FAKE_DOMAINS):
        raise MarketingError(400, detail=f"{email} looks fake or invalid, please enter a real email address.")
    if local_part.lower().startswith(TOO_MANY_SIGNUPS_PREFIX):
        raise MarketingError(
            400,
            detail=f"{email} has signed up to a lot of lists very recently; we're not allowing more signups for now",
        )
    return email


def check_status(value: Any, field: str = "status") -> str:
    if value not in WRITABLE_STATUSES:
        raise invalid_field(field, f"Value must be one of: {', '.join(WRITABLE_STATUSES)}")
    return str(value)


def check_status_change(email: str, current: str, requested: str) -> None:
    if requested == "subscribed" and current in COMPLIANCE_STATES:
        raise compliance_error(email)


def _merge_fields(audience: Audience, body: dict[str, Any], *, creating: bool, skip_validation: bool) -> dict[str, Any]:
    supplied = body.get("merge_fields", {})
    if supplied is None:
        supplied = {}
    if not isinstance(supplied, dict):
        raise invalid_field("merge_fields", "Schema describes object, " + type(supplied).__name__ + " found instead")
    known = {merge_field["tag"] for merge_field in audience.merge_fields}
    accepted = {tag.upper(): value for tag, value in supplied.items() if tag.upper() in known}
    if not skip_validation:
        missing = [
            tag
            for tag in audience.required_merge_tags()
            if (creating and accepted.get(tag) in (None, "")) or (tag in accepted and accepted[tag] in (None, ""))
        ]
        if missing:
            raise MarketingError(
                400,
                detail="Your merge fields were invalid.",
                errors=[{"field": tag, "message": "Please enter a value"} for tag in missing],
            )
    return accepted


def _timestamp_field(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value in (None, ""):
        return None
    return iso_timestamp(parse_timestamp(str(value), field))


def _apply_common_fields(document: dict[str, Any], body: dict[str, Any]) -> None:
    """Fields that create and update treat alike."""
    for field in ("language", "ip_signup", "ip_opt"):
        if isinstance(body.get(field), str):
            document[field] = body[field]
    if isinstance(body.get("vip"), bool):
        document["vip"] = body["vip"]
    if isinstance(body.get("interests"), dict):
        document["interests"].update({key: bool(value) for key, value in body["interests"].items()})
    if isinstance(body.get("location"), dict):
        for coordinate in ("latitude", "longitude"):
            if isinstance(body["location"].get(coordinate), int | float):
                document["location"][coordinate] = body["location"][coordinate]
    for field in ("timestamp_signup", "timestamp_opt"):
        timestamp = _timestamp_field(body, field)
        if timestamp is not None:
            document[field] = timestamp


def new_member(
    audience: Audience,
    email: str,
    status: str,
    body: dict[str, Any],
    now: int,
    *,
    skip_merge_validation: bool = False,
) -> dict[str, Any]:
    """The document of a member created through the API (tags apply here and only here)."""
    merge_values = _merge_fields(audience, body, creating=True, skip_validation=skip_merge_validation)
    merge_fields = {
        merge_field["tag"]: merge_values.get(merge_field["tag"], merge_field["default_value"])
        for merge_field in audience.merge_fields
    }
    requested_tags = body.get("tags")
    tag_names = [str(tag) for tag in requested_tags if str(tag).strip()] if isinstance(requested_tags, list) else []
    tags = [{"id": audience.tag_id(name), "name": name} for name in dict.fromkeys(tag_names)]
    full_name = " ".join(str(merge_fields.get(tag, "")) for tag in ("FNAME", "LNAME")).strip()
    document = build_member(
        base_url=audience.base_url,
        list_id=audience.id,
        member_id=subscriber_hash(email),
        email_address=email,
        unique_email_id=uuid.uuid4().hex[:10],
        contact_id=uuid.uuid4().hex,
        full_name=full_name,
        web_id=WEB_ID_BASE + len(audience.members.status_codes),
        status=status,
        merge_fields=merge_fields,
        interests={},
        stats={"avg_open_rate": 0, "avg_click_rate": 0},
        ip_signup="",
        timestamp_signup="",
        ip_opt="",
        timestamp_opt=iso_timestamp(now) if status == "subscribed" else "",
        member_rating=2,
        last_changed=iso_timestamp(now),
        language="",
        vip=False,
        location=empty_location(),
        source=API_SOURCE,
        tags=tags,
        tags_count=len(tags),
    )
    _apply_common_fields(document, body)
    return document


def updated_member(
    audience: Audience,
    current: dict[str, Any],
    body: dict[str, Any],
    now: int,
    *,
    skip_merge_validation: bool = False,
) -> dict[str, Any]:
    """A copy of ``current`` with the body applied as an update (tags in the body are
    ignored, as Mailchimp ignores them for existing members)."""
    document = copy.deepcopy(current)
    email = document["email_address"]
    if "status" in body and body["status"] is not None:
        status = check_status(body["status"])
        check_status_change(email, current["status"], status)
        if status != current["status"]:
            document["status"] = status
            if status == "subscribed":
                document["timestamp_opt"] = iso_timestamp(now)
    merge_values = _merge_fields(audience, body, creating=False, skip_validation=skip_merge_validation)
    document["merge_fields"].update(merge_values)
    if merge_values:
        names = document["merge_fields"]
        document["full_name"] = f"{names.get('FNAME', '')} {names.get('LNAME', '')}".strip()
    _apply_common_fields(document, body)
    return document
