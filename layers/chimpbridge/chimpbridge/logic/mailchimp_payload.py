"""Mailchimp's audience webhook payload, read into one event. Pure functions: no I/O.

Mailchimp posts ``application/x-www-form-urlencoded`` with PHP-style nested keys::

    type=subscribe&fired_at=2009-03-26 21:35:57&data[list_id]=a6b5da1054&data[email]=...
    &data[merges][FNAME]=Mailchimp&data[merges][INTERESTS]=Group1,Group2
    &data[merges][GROUPINGS][0][name]=Interests&data[merges][GROUPINGS][0][groups]=Group1,Group2

:func:`parse_form` turns that into nested dicts (numbered keys become lists);
:func:`to_event` turns the document into the published detail. Quirks handled here:

- ``fired_at`` is ``YYYY-MM-DD HH:MM:SS`` without a zone; Mailchimp means UTC (GMT).
- Group lists (INTERESTS, GROUPINGS' ``groups``) are one string, names separated by commas;
  a comma inside a name is escaped as ``\\,``.
- ``data[id]`` of a member is Mailchimp's legacy id, not the subscriber hash: the hash (md5
  of the lowercased email, the member's id in API 3.0) is computed here.
- ``cleaned`` carries no member id, ``upemail`` only the new one; dedupe keys use the email.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from chimpbridge.errors import FieldError, InvalidRequest
from chimpbridge.models.audience_events import DETAIL_TYPES, AudienceEvent, AudienceEventDetail, Grouping
from chimpbridge.models.checks import address_problem, text_problem

MAX_FIELDS = 2_000
MAX_DEPTH = 6
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
# ASCII digits only: str.isdigit() also takes "²" and "٣", which int() refuses or reads as 3.
_INDEX = re.compile(r"[0-9]{1,6}")
_WEB_ID = re.compile(r"[0-9]{1,18}")
# Required members of data, per type.
REQUIRED: dict[str, tuple[str, ...]] = {
    "subscribe": ("list_id", "email"),
    "unsubscribe": ("list_id", "email"),
    "profile": ("list_id", "email"),
    "cleaned": ("list_id", "email"),
    "upemail": ("list_id", "old_email", "new_email"),
    "campaign": ("list_id", "id"),
}
_GROUP_MERGES = ("INTERESTS", "GROUPINGS")


def subscriber_hash(email: str) -> str:
    """The member's id in Mailchimp's API: md5 of the lowercased address."""
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


def parse_form(body: bytes) -> dict[str, Any]:
    """The form body as nested dicts; ``a[0]``, ``a[1]`` (or ``a[]``) become a list."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise InvalidRequest("The body is not UTF-8 form data.") from None
    except ValueError:
        raise InvalidRequest(f"The body has more than {MAX_FIELDS} fields.") from None
    root: dict[str, Any] = {}
    for key, value in pairs:
        _place(root, _path(key), value)
    document = _listify(root)
    return document if isinstance(document, dict) else {}


def _path(key: str) -> list[str]:
    match = _KEY.match(key)
    if match is None:
        return [key]  # not PHP-style: kept whole, as a top-level member
    parts = [match.group(1), *_PART.findall(match.group(2))]
    if len(parts) > MAX_DEPTH:
        raise InvalidRequest(f"The form field {key[:100]!r} is nested more than {MAX_DEPTH} levels deep.")
    return parts


def _place(root: dict[str, Any], path: list[str], value: str) -> None:
    node = root
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        name = str(len(node)) if part == "" else part  # "a[]" appends
        if last:
            if isinstance(node.get(name), dict):
                raise InvalidRequest(f"The form field {'.'.join(path)!r} is both a value and a group of values.")
            node[name] = value
            return
        child = node.setdefault(name, {})
        if not isinstance(child, dict):
            raise InvalidRequest(f"The form field {'.'.join(path)!r} is both a value and a group of values.")
        node = child


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(_INDEX.fullmatch(key) for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def group_names(text: str) -> list[str]:
    """``"Group1, Group2"`` -> ``["Group1", "Group2"]``; ``\\,`` is a comma inside a name."""
    names = (part.replace("\\,", ",").strip() for part in _UNESCAPED_COMMA.split(text))
    return [name for name in names if name]


def fired_at(text: str) -> datetime:
    """Mailchimp's ``YYYY-MM-DD HH:MM:SS`` (UTC), or an ISO 8601 time; as an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(
            "fired_at is not a date and time.", [FieldError("fired_at", "must be YYYY-MM-DD HH:MM:SS")]
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def to_event(document: dict[str, Any], sources: tuple[str, ...]) -> AudienceEvent | None:
    """The event a parsed delivery describes; None for a ``type`` this version does not know."""
    kind = _text(document.get("type"))
    if kind not in DETAIL_TYPES:
        return None
    data = document.get("data")
    if not isinstance(data, dict):
        data = {}
    missing = [name for name in REQUIRED[kind] if not _text(data.get(name))]
    raw_fired_at = _text(document.get("fired_at")) or ""
    if not raw_fired_at:
        missing.insert(0, "fired_at")
    if missing:
        raise InvalidRequest(
            f"The {kind} delivery lacks required fields.",
            [FieldError(name if name == "fired_at" else f"data[{name}]", "is required") for name in missing],
        )
    _check_identifiers(kind, data, raw_fired_at)
    list_id, fields = _required(data, "list_id"), _fields_of(kind, data)
    dedupe_key = _dedupe_key(kind, list_id, fields, raw_fired_at)
    detail = AudienceEventDetail(
        change_id=hashlib.sha256(dedupe_key.encode()).hexdigest()[:32],
        mailchimp_type=kind,
        list_id=list_id,
        fired_at=fired_at(raw_fired_at),
        webhook_sources=list(sources),
        **fields,
    )
    return AudienceEvent(detail_type=DETAIL_TYPES[kind], detail=detail, dedupe_key=dedupe_key)


def _check_identifiers(kind: str, data: dict[str, Any], raw_fired_at: str) -> None:
    """What identifies the change (the audience, the addresses, the time: the event's identity
    and its dedupe key) follows the text rules; the rest is Mailchimp's data, published as sent."""
    values = {f"data[{name}]": _required(data, name) for name in REQUIRED[kind]}
    errors = [
        FieldError(name, problem)
        for name, value in {"fired_at": raw_fired_at, **values}.items()
        if (problem := address_problem(value) if name.endswith("email]") else text_problem(value, 100)) is not None
    ]
    if errors:
        raise InvalidRequest(f"The {kind} delivery has fields that are not valid.", errors)


def _fields_of(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    if kind == "campaign":
        return _optional(
            campaign_id=_text(data.get("id")),
            subject=_text(data.get("subject")),
            status=_text(data.get("status")),
            reason=_text(data.get("reason")),
        )
    if kind == "upemail":
        new_email, old_email = _required(data, "new_email"), _required(data, "old_email")
        return _optional(
            email=new_email,
            subscriber_hash=subscriber_hash(new_email),
            new_email=new_email,
            old_email=old_email,
            old_subscriber_hash=subscriber_hash(old_email),
            member_id=_text(data.get("new_id")),
        )
    email = _required(data, "email")
    fields = _optional(
        email=email,
        subscriber_hash=subscriber_hash(email),
        member_id=_text(data.get("id")),
        web_id=_web_id(data.get("web_id")),
        email_type=_text(data.get("email_type")),
        ip_signup=_text(data.get("ip_signup")),
        ip_opt=_text(data.get("ip_opt")),
        action=_text(data.get("action")),
        reason=_text(data.get("reason")),
        campaign_id=_text(data.get("campaign_id")),
    )
    merges = data.get("merges")
    if isinstance(merges, dict):
        fields["merge_fields"] = {name: value for name, value in merges.items() if name not in _GROUP_MERGES}
        if isinstance(merges.get("INTERESTS"), str):
            fields["interests"] = group_names(merges["INTERESTS"])
        if isinstance(merges.get("GROUPINGS"), list):
            fields["groupings"] = [_grouping(item) for item in merges["GROUPINGS"] if isinstance(item, dict)]
    return fields


def _grouping(item: dict[str, Any]) -> Grouping:
    return Grouping(
        id=_text(item.get("id")),
        unique_id=_text(item.get("unique_id")),
        name=_text(item.get("name")),
        groups=group_names(_text(item.get("groups")) or ""),
    )


def _dedupe_key(kind: str, list_id: str, fields: dict[str, Any], raw_fired_at: str) -> str:
    """(type, list, member or campaign, fired_at as sent): the same for every delivery of one
    change. Members by subscriber hash, which every member payload lets us compute."""
    if kind == "campaign":
        subject = f"campaign:{fields.get('campaign_id')}"
    elif kind == "upemail":
        subject = f"member:{fields['old_subscriber_hash']}>{fields['subscriber_hash']}"
    else:
        subject = f"member:{fields['subscriber_hash']}"
    return "|".join((kind, list_id, subject, raw_fired_at))


def _web_id(value: Any) -> int | None:
    text = _text(value)
    return int(text) if text and _WEB_ID.fullmatch(text) else None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _required(data: dict[str, Any], name: str) -> str:
    """A member :func:`to_event` has checked is there."""
    return _text(data.get(name)) or ""


def _optional(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}
