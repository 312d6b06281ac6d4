"""The JSON shape of a list member (the spec's "List Members" schema), shared by members
created through the API and by generated (seeded) members.

Generated members are serialised through a %-template built from the very same
``build_member`` call with placeholder values, so both paths cannot drift apart, and a page
of 1000 members costs one string format per member instead of a dict build plus json.dumps.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sandbox.mailchimp.problems import invalid_field
from sandbox.mailchimp.projection import PathTree

STATUS_CODES: dict[str, int] = {
    "subscribed": 1,
    "unsubscribed": 2,
    "cleaned": 3,
    "pending": 4,
    "transactional": 5,
    "archived": 6,
}
# Index 0 marks a slot whose member was permanently deleted (or skipped while seeding).
STATUS_NAMES: tuple[str, ...] = ("", *STATUS_CODES)
ABSENT = 0
ARCHIVED = STATUS_CODES["archived"]


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the lowercased address."""
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


_DATE_PREFIXES: dict[int, str] = {}
_TIMES_OF_DAY = tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+00:00" for s in range(86400))


def iso_timestamp(epoch_seconds: int) -> str:
    """Mailchimp's timestamp format: second resolution, explicit +00:00. (Dates and times of
    day come from tables: a page of generated members formats three per member.)"""
    day, second_of_day = divmod(epoch_seconds, 86400)
    prefix = _DATE_PREFIXES.get(day)
    if prefix is None:
        prefix = _DATE_PREFIXES[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))
    return prefix + _TIMES_OF_DAY[second_of_day]


def parse_timestamp(value: str, field: str) -> int:
    """Epoch seconds of an ISO 8601 value from a request (a "+" may arrive as a space when a
    caller did not URL-encode the query string)."""
    text = value.strip().replace(" ", "+")
    if len(text) > 10 and text[10] == "+":
        text = text[:10] + "T" + text[11:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise invalid_field(field, f"'{value}' is not a valid ISO 8601 date-time.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def dump_member(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def member_links(base_url: str, list_id: str, member_id: str) -> list[dict[str, str]]:
    member_url = f"{base_url}/3.0/lists/{list_id}/members/{member_id}"
    return [
        {"rel": "self", "href": member_url, "method": "GET"},
        {"rel": "parent", "href": f"{base_url}/3.0/lists/{list_id}/members", "method": "GET"},
        {"rel": "update", "href": member_url, "method": "PATCH"},
        {"rel": "upsert", "href": member_url, "method": "PUT"},
        {"rel": "delete", "href": member_url, "method": "DELETE"},
    ]


def build_member(
    *,
    base_url: str,
    list_id: str,
    member_id: Any,
    email_address: Any,
    unique_email_id: Any,
    contact_id: Any,
    full_name: Any,
    web_id: Any,
    status: Any,
    merge_fields: Any,
    interests: Any,
    stats: Any,
    ip_signup: Any,
    timestamp_signup: Any,
    ip_opt: Any,
    timestamp_opt: Any,
    member_rating: Any,
    last_changed: Any,
    language: Any,
    vip: Any,
    location: Any,
    source: Any,
    tags: Any,
    tags_count: Any,
) -> dict[str, Any]:
    """A member document, keys in Mailchimp's order. Values are typed ``Any`` because the
    template builder passes placeholders in place of numbers and objects."""
    return {
        "id": member_id,
        "email_address": email_address,
        "unique_email_id": unique_email_id,
        "contact_id": contact_id,
        "full_name": full_name,
        "web_id": web_id,
        "email_type": "html",
        "status": status,
        "consents_to_one_to_one_messaging": True,
        "merge_fields": merge_fields,
        "interests": interests,
        "stats": stats,
        "ip_signup": ip_signup,
        "timestamp_signup": timestamp_signup,
        "ip_opt": ip_opt,
        "timestamp_opt": timestamp_opt,
        "member_rating": member_rating,
        "last_changed": last_changed,
        "language": language,
        "vip": vip,
        "email_client": "",
        "location": location,
        "source": source,
        "tags_count": tags_count,
        "tags": tags,
        "list_id": list_id,
        "_links": member_links(base_url, list_id, member_id),
    }


def empty_location() -> dict[str, Any]:
    return {
        "latitude": 0,
        "longitude": 0,
        "gmtoff": 0,
        "dstoff": 0,
        "country_code": "",
        "timezone": "",
        "region": "",
    }


def _placeholder(name: str) -> str:
    return f"\x00{name}\x00"


# Fields of a generated member that vary per member. The first group is inserted inside a
# JSON string (values must be JSON-safe text without quotes); the second replaces a whole
# JSON value (values must be JSON text).
TEMPLATE_STRING_FIELDS = (
    "member_id",
    "email_address",
    "unique_email_id",
    "contact_id",
    "full_name",
    "status",
    "first_name",
    "last_name",
    "timestamp_signup",
    "timestamp_opt",
    "last_changed",
)
TEMPLATE_VALUE_FIELDS = ("web_id", "stats", "member_rating", "tags", "tags_count")


# The order in which the template's fields appear (build_member's key order; the member
# id recurs in the five links). Generated members build their values in this order.
TEMPLATE_ORDER = (
    "member_id", "email_address", "unique_email_id", "contact_id", "full_name", "web_id", "status",
    "first_name", "last_name", "stats", "timestamp_signup", "timestamp_opt", "member_rating",
    "last_changed", "tags_count", "tags", "member_id", "member_id", "member_id", "member_id",
)  # fmt: skip


def build_member_template(
    base_url: str,
    list_id: str,
    merge_tags: list[str],
    source: str,
    shape: Callable[[dict[str, Any]], Any] | None = None,
) -> str:
    """A %-format string (``%(name)s`` fields) that renders a generated member exactly as
    ``build_member`` + ``json.dumps`` would; ``shape`` (a fields/exclude_fields projection)
    is applied to the document first. Merge fields other than FNAME/LNAME are empty for
    generated members."""
    merge_fields = {
        tag: _placeholder("first_name") if tag == "FNAME" else _placeholder("last_name") if tag == "LNAME" else ""
        for tag in merge_tags
    }
    sample = build_member(
        base_url=base_url,
        list_id=list_id,
        member_id=_placeholder("member_id"),
        email_address=_placeholder("email_address"),
        unique_email_id=_placeholder("unique_email_id"),
        contact_id=_placeholder("contact_id"),
        full_name=_placeholder("full_name"),
        web_id=_placeholder("web_id"),
        status=_placeholder("status"),
        merge_fields=merge_fields,
        interests={},
        stats=_placeholder("stats"),
        ip_signup="",
        timestamp_signup=_placeholder("timestamp_signup"),
        ip_opt="",
        timestamp_opt=_placeholder("timestamp_opt"),
        member_rating=_placeholder("member_rating"),
        last_changed=_placeholder("last_changed"),
        language="",
        vip=False,
        location=empty_location(),
        source=source,
        tags=_placeholder("tags"),
        tags_count=_placeholder("tags_count"),
    )
    shaped = sample if shape is None else shape(sample)
    template = json.dumps(shaped, separators=(",", ":"), ensure_ascii=False).replace("%", "%%")
    for name in TEMPLATE_VALUE_FIELDS:
        template = template.replace(json.dumps(_placeholder(name)), f"%({name})s")
    for name in TEMPLATE_STRING_FIELDS:
        template = template.replace(json.dumps(_placeholder(name))[1:-1], f"%({name})s")
    if "\\u0000" in template:
        raise AssertionError("member template kept a placeholder: a field was renamed")
    return template


def positional_template(template: str) -> str:
    """The full member template with positional fields (a tuple formats twice as fast as a
    dict), given values in TEMPLATE_ORDER."""
    if tuple(re.findall(r"%\((\w+)\)s", template)) != TEMPLATE_ORDER:
        raise AssertionError("build_member changed: update TEMPLATE_ORDER and SeededMembers.json_texts")
    return re.sub(r"%\((\w+)\)s", "%s", template)


def templatable(fields: PathTree | None, excluded: PathTree | None) -> bool:
    """Whether a member projection can come from a template: not if it reaches inside a
    field the template fills as a whole JSON value (tags, stats)."""
    return not any(
        tree is not None and tree.get(name) is not None for tree in (fields, excluded) for name in TEMPLATE_VALUE_FIELDS
    )
