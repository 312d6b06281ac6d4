"""The member operations of the Marketing API, on one audience. Callers hold the state lock."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from sandbox.mailchimp.audiences import Audience
from sandbox.mailchimp.http_types import dump_json
from sandbox.mailchimp.member_documents import ARCHIVED, STATUS_CODES, iso_timestamp, parse_timestamp, subscriber_hash
from sandbox.mailchimp.member_rules import (
    check_new_address,
    check_status,
    check_status_change,
    forgotten_error,
    member_exists_error,
    new_member,
    updated_member,
)
from sandbox.mailchimp.members import SORTABLE_FIELDS, MemberQuery
from sandbox.mailchimp.problems import MarketingError, invalid_field
from sandbox.mailchimp.projection import PathTree, parse_paths, project

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10
MAX_BATCH_MEMBERS = 500
_MEMBERS_SLOT = "\x00members\x00"
_MEMBERS_SLOT_JSON = json.dumps(_MEMBERS_SLOT)
# Batch results use the older, smaller member shape ("List Members_5" in the spec).
_NOT_IN_BATCH_RESULTS = ("contact_id", "full_name", "web_id", "consents_to_one_to_one_messaging", "source")


def member_hash(reference: str) -> str:
    """Paths accept the subscriber hash or the address itself."""
    reference = unquote(reference)
    return subscriber_hash(reference) if "@" in reference else reference.lower()


def _slot(audience: Audience, reference: str) -> int:
    slot = audience.members.find(member_hash(reference))
    if slot is None:
        raise MarketingError(404)
    return slot


def _next_change(audience: Audience, slot: int, now: int) -> int:
    """last_changed advances on every change, even two changes within one second."""
    return max(now, audience.members.last_changed[slot] + 1)


def _save_update(audience: Audience, slot: int, current: dict[str, Any], document: dict[str, Any], now: int) -> None:
    if document == current:
        return
    changed_at = _next_change(audience, slot, now)
    document["last_changed"] = iso_timestamp(changed_at)
    audience.members.replace(slot, document, changed_at)


def _insert(audience: Audience, email: str, status: str, body: dict[str, Any], now: int, skip: bool) -> dict[str, Any]:
    document = new_member(audience, email, status, body, now, skip_merge_validation=skip)
    audience.members.insert(document["id"], document, now)
    return document


def _readd_archived(
    audience: Audience, slot: int, status: str, body: dict[str, Any], now: int, skip: bool
) -> dict[str, Any]:
    current = audience.members.document(slot)
    update = {key: value for key, value in body.items() if key not in ("status", "email_address")}
    document = updated_member(audience, current, update, now, skip_merge_validation=skip)
    document["status"] = status
    document["timestamp_opt"] = iso_timestamp(now) if status == "subscribed" else document["timestamp_opt"]
    _save_update(audience, slot, current, document, now)
    return document


def get_member(audience: Audience, reference: str) -> dict[str, Any]:
    return audience.members.document(_slot(audience, reference))


def create_member(audience: Audience, body: dict[str, Any], now: int, skip: bool) -> dict[str, Any]:
    """POST /members: a second signup of the same address is "Member Exists"."""
    email = check_new_address(body.get("email_address"))
    status = check_status(body.get("status"))
    target = subscriber_hash(email)
    if target in audience.members.forgotten_hashes:
        raise forgotten_error(email)
    slot = audience.members.find(target)
    if slot is None:
        return _insert(audience, email, status, body, now, skip)
    if audience.members.status_codes[slot] != ARCHIVED:
        raise member_exists_error(audience.members.document(slot)["email_address"])
    return _readd_archived(audience, slot, status, body, now, skip)


def upsert_member(audience: Audience, reference: str, body: dict[str, Any], now: int, skip: bool) -> dict[str, Any]:
    """PUT /members/{hash}: create with status_if_new, or update (status only if given)."""
    target = member_hash(reference)
    email = check_new_address(body.get("email_address"))
    if subscriber_hash(email) != target:
        raise invalid_field("email_address", "The email address does not match the subscriber hash in the URL.")
    if target in audience.members.forgotten_hashes:
        raise forgotten_error(email)
    slot = audience.members.find(target)
    if slot is None or audience.members.status_codes[slot] == ARCHIVED:
        wanted = body.get("status_if_new") or body.get("status")
        if wanted is None:
            raise invalid_field("status_if_new", "This value should not be blank.")
        status = check_status(wanted, "status_if_new")
        if slot is None:
            return _insert(audience, email, status, body, now, skip)
        return _readd_archived(audience, slot, status, body, now, skip)
    current = audience.members.document(slot)
    document = updated_member(audience, current, body, now, skip_merge_validation=skip)
    _save_update(audience, slot, current, document, now)
    return audience.members.document(slot)


def patch_member(audience: Audience, reference: str, body: dict[str, Any], now: int, skip: bool) -> dict[str, Any]:
    slot = _slot(audience, reference)
    current = audience.members.document(slot)
    document = updated_member(audience, current, body, now, skip_merge_validation=skip)
    new_email = body.get("email_address")
    if isinstance(new_email, str) and subscriber_hash(new_email) != current["id"]:
        new_email = check_new_address(new_email)
        if audience.members.find(subscriber_hash(new_email)) is not None:
            raise member_exists_error(new_email)
        document["email_address"] = new_email
        document["id"] = subscriber_hash(new_email)
        for link in document["_links"]:
            link["href"] = link["href"].replace(current["id"], document["id"])
    _save_update(audience, slot, current, document, now)
    return audience.members.document(slot)


def archive_member(audience: Audience, reference: str, now: int) -> None:
    """DELETE /members/{hash} archives: the member leaves the audience but can be re-added."""
    slot = _slot(audience, reference)
    current = audience.members.document(slot)
    document = copy.deepcopy(current)
    document["status"] = "archived"
    _save_update(audience, slot, current, document, now)


def delete_member_permanently(audience: Audience, reference: str) -> None:
    audience.members.forget(_slot(audience, reference))


def member_tags(audience: Audience, reference: str) -> dict[str, Any]:
    tags = audience.members.document(_slot(audience, reference))["tags"]
    return {"tags": [dict(tag) for tag in tags], "total_items": len(tags)}


def update_member_tags(audience: Audience, reference: str, body: dict[str, Any], now: int) -> None:
    """POST /members/{hash}/tags: the only way to tag an existing member."""
    slot = _slot(audience, reference)
    requested = body.get("tags")
    if not isinstance(requested, list):
        raise invalid_field("tags", "Schema describes array, NULL found instead")
    current = audience.members.document(slot)
    document = copy.deepcopy(current)
    tags: list[dict[str, Any]] = document["tags"]
    for tag in requested:
        if not isinstance(tag, dict) or not str(tag.get("name", "")).strip():
            raise invalid_field("tags", "Each tag needs a name.")
        name = str(tag["name"]).strip()
        if tag.get("status") not in ("active", "inactive"):
            raise invalid_field("tags.status", "Value must be one of: active, inactive")
        present = any(existing["name"] == name for existing in tags)
        if tag["status"] == "active" and not present:
            tags.append({"id": audience.tag_id(name), "name": name})
        elif tag["status"] == "inactive" and present:
            tags[:] = [existing for existing in tags if existing["name"] != name]
    document["tags_count"] = len(tags)
    _save_update(audience, slot, current, document, now)


def batch_subscribe(audience: Audience, body: dict[str, Any], now: int) -> dict[str, Any]:
    """POST /lists/{id}: no status_if_new here; update_existing overwrites the status of
    existing members. Failures are reported per member, never as an HTTP error."""
    members = body.get("members")
    if not isinstance(members, list):
        raise invalid_field("members", "Schema describes array, NULL found instead")
    if len(members) > MAX_BATCH_MEMBERS:
        raise invalid_field("members", f"You may only add up to {MAX_BATCH_MEMBERS} members per request.")
    update_existing = bool(body.get("update_existing", False))
    created: list[dict[str, Any]] = []
    updated: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for entry in members:
        item = entry if isinstance(entry, dict) else {}
        address = str(item.get("email_address", ""))
        try:
            document, was_created = _batch_member(audience, item, update_existing, now)
        except MarketingError as error:
            code = "ERROR_CONTACT_EXISTS" if error.title == "Member Exists" else "ERROR_GENERIC"
            message = error.detail if error.errors is None else f"{error.detail} {error.errors}"
            errors.append({"email_address": address, "error": message, "error_code": code})
            continue
        (created if was_created else updated).append(_batch_result_member(document))
    return {
        "new_members": created,
        "updated_members": updated,
        "errors": errors,
        "total_created": len(created),
        "total_updated": len(updated),
        "error_count": len(errors),
        "_links": [{"rel": "self", "href": f"{audience.base_url}/3.0/lists/{audience.id}", "method": "GET"}],
    }


def _batch_result_member(document: dict[str, Any]) -> dict[str, Any]:
    member = {key: value for key, value in document.items() if key not in _NOT_IN_BATCH_RESULTS}
    member["location"] = {key: value for key, value in document["location"].items() if key != "region"}
    return member


def _batch_member(
    audience: Audience, item: dict[str, Any], update_existing: bool, now: int
) -> tuple[dict[str, Any], bool]:
    email = check_new_address(item.get("email_address"))
    target = subscriber_hash(email)
    if target in audience.members.forgotten_hashes:
        raise forgotten_error(email)
    slot = audience.members.find(target)
    if slot is None or audience.members.status_codes[slot] == ARCHIVED:
        status = check_status(item.get("status"))
        if slot is None:
            return _insert(audience, email, status, item, now, False), True
        return _readd_archived(audience, slot, status, item, now, False), False
    if not update_existing:
        raise MarketingError(
            400,
            "Member Exists",
            f"{email} is already a list member, do you want to update? please provide "
            "update_existing:'true' in the request body",
        )
    current = audience.members.document(slot)
    if item.get("status") is not None:
        check_status_change(email, current["status"], check_status(item["status"]))
    document = updated_member(audience, current, item, now)
    _save_update(audience, slot, current, document, now)
    return audience.members.document(slot), False


def int_parameter(query: Mapping[str, str], name: str, default: int, maximum: int | None = None) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_field(name, f"'{raw}' is not an integer.") from None
    if value < 0 or (maximum is not None and value > maximum):
        limit = f" and at most {maximum}" if maximum is not None else ""
        raise invalid_field(name, f"Must be at least 0{limit}.")
    return value


def member_query(query: Mapping[str, str], *, since_inclusive: bool = True) -> MemberQuery:
    status = query.get("status") or None
    if status is not None and status not in STATUS_CODES:
        raise invalid_field("status", f"Value must be one of: {', '.join(STATUS_CODES)}")
    sort_field = query.get("sort_field") or None
    if sort_field is not None and sort_field not in SORTABLE_FIELDS:
        raise invalid_field("sort_field", f"Value must be one of: {', '.join(SORTABLE_FIELDS)}")
    sort_dir = (query.get("sort_dir") or "ASC").upper()
    if sort_dir not in ("ASC", "DESC"):
        raise invalid_field("sort_dir", "Value must be one of: ASC, DESC")
    since = query.get("since_last_changed")
    before = query.get("before_last_changed")
    return MemberQuery(
        status=STATUS_CODES[status] if status else None,
        since_last_changed=parse_timestamp(since, "since_last_changed") if since else None,
        since_inclusive=since_inclusive or not since,
        before_last_changed=parse_timestamp(before, "before_last_changed") if before else None,
        unique_email_id=query.get("unique_email_id") or None,
        sort_field=sort_field,
        descending=sort_dir == "DESC",
    )


def member_page(audience: Audience, query: Mapping[str, str], *, since_inclusive: bool = True) -> str:
    """GET /lists/{id}/members as JSON text. Without a projection the page is stitched from
    each member's serialised JSON, which is what makes large exports cheap."""
    count = int_parameter(query, "count", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    offset = int_parameter(query, "offset", 0)
    slots = audience.members.select(member_query(query, since_inclusive=since_inclusive))
    page = slots[offset : offset + count]
    links = [
        {"rel": "self", "href": f"{audience.base_url}/3.0/lists/{audience.id}/members", "method": "GET"},
        {"rel": "parent", "href": f"{audience.base_url}/3.0/lists/{audience.id}", "method": "GET"},
        {"rel": "create", "href": f"{audience.base_url}/3.0/lists/{audience.id}/members", "method": "POST"},
    ]
    fields = parse_paths(query.get("fields"))
    excluded = parse_paths(query.get("exclude_fields"))
    if fields is None and excluded is None:
        return (
            '{"members":['
            + ",".join(audience.members.json_texts(page))
            + f'],"list_id":"{audience.id}","total_items":{len(slots)},"_links":{dump_json(links)}}}'
        )
    # Project the envelope with the members as one opaque value, then splice in the members,
    # each projected on its own (from a template for generated members).
    member_fields, member_excluded = _member_trees(fields, excluded)
    envelope_fields = None if fields is None else {**fields, "members": None} if "members" in fields else fields
    envelope_excluded = excluded
    if excluded is not None and excluded.get("members") is not None:
        envelope_excluded = {key: tree for key, tree in excluded.items() if key != "members"}
    envelope = {"members": _MEMBERS_SLOT, "list_id": audience.id, "total_items": len(slots), "_links": links}
    text = dump_json(project(envelope, envelope_fields, envelope_excluded))
    if _MEMBERS_SLOT_JSON in text:
        members = ",".join(audience.members.json_texts(page, member_fields, member_excluded))
        text = text.replace(_MEMBERS_SLOT_JSON, f"[{members}]", 1)
    return text


def _member_trees(fields: PathTree | None, excluded: PathTree | None) -> tuple[PathTree | None, PathTree | None]:
    """The member-level parts of page-level fields/exclude_fields trees."""
    member_fields = fields.get("members") if fields is not None else None
    member_excluded = excluded.get("members") if excluded is not None else None
    return member_fields, member_excluded
