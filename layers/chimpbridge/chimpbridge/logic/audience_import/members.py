"""One row to one member: checked the way a signup is checked, then upserted.

Checking reuses the signup path (:func:`~chimpbridge.logic.signup_form.build_signup`): the
same address syntax, lengths and text rules, so an import can set nothing a signup could not.
A row that fails them is reported and never sent.

Applying is ``PUT /lists/{id}/members/{md5(lower(email))}`` with ``status_if_new`` and never
``status``: a new member gets the row's status (pending unless consent is given and trusted),
an existing one keeps the status it has, subscribed or not. Tags in the body apply only to a
member the PUT creates; an existing member missing some gets them through the tags endpoint,
only when the row has tags (so would a new one, should Mailchimp leave a PUT's tags out).
Mailchimp's answers about the person (forgotten, compliance state, fake-looking address) are
outcomes of the row, reported, never retried.

The outcome is read from Mailchimp's answer, as Mailchimp does not say whether a PUT created:
nothing changed (``last_changed`` is older than the call) is ``unchanged``; a change that
leaves the member exactly as the row alone would have made it is ``created``; any other
change is ``updated``.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chimpbridge.errors import ImportFailed, InvalidRequest, MailchimpApiError
from chimpbridge.logic.audience_import.columns import Columns, tag_names
from chimpbridge.logic.signup_form import SignupFields, build_signup
from chimpbridge.models import lax_bool
from chimpbridge.models.audience_import import RowOutcome, StatusIfNew
from chimpbridge.models.import_field_map import ImportFieldMap
from chimpbridge.models.signup import SignupFieldMap

# Lambda's clock and Mailchimp's may differ by this much: a change stamped this early still
# counts as the call's own.
CLOCK_SLACK_SECONDS = 2
# Row status -> status_if_new; None: the row is not imported (Mailchimp alone cleans or archives).
ROW_STATUSES: dict[str, StatusIfNew | None] = {
    "subscribed": "subscribed",
    "pending": "pending",
    "unsubscribed": "unsubscribed",
    "transactional": "transactional",
    "cleaned": None,
    "archived": None,
}


@dataclass(frozen=True)
class Planned:
    """A row ready to send."""

    number: int
    email: str
    body: dict[str, Any]
    tags: list[str]


@dataclass(frozen=True)
class RowResult:
    number: int
    email: str
    outcome: RowOutcome
    reason: str | None = None
    detail: str | None = None


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


# ---------------------------------------------------------------- checking
class RowChecker:
    def __init__(self, list_id: str, columns: Columns, field_map: ImportFieldMap, *, trust_consent: bool) -> None:
        self.list_id = list_id
        self.columns = columns
        self.field_map = field_map
        self.trust_consent = trust_consent
        self.allowed_tags = {tag.casefold(): tag for tag in field_map.tags}
        self.fixed_map = SignupFieldMap(tags={tag: tag for tag in field_map.tags}, default_tags=field_map.default_tags)

    def plan(self, number: int, values: dict[str, Any]) -> Planned | RowResult:
        """The request for the row, or the row's outcome when it is not to be sent."""
        read = self._read(values)
        fields = read.fields
        email_hint = fields.email.strip()
        status_if_new = ROW_STATUSES.get(read.status or "pending", "pending")
        if read.status is not None and read.status not in ROW_STATUSES:
            return RowResult(number, email_hint, "skipped", "invalid-field", "status: not a Mailchimp status")
        if status_if_new is None:
            return RowResult(number, email_hint, "skipped", f"status-{read.status}")
        if status_if_new in ("pending", "subscribed"):
            given = read.consent is True or (read.consent is None and status_if_new == "subscribed")
            status_if_new = "subscribed" if given and self.trust_consent else "pending"
        fields.tags, field_map = self._tags(fields.tags)
        try:
            signup = build_signup(
                fields,
                field_map=field_map,
                list_id=self.list_id,
                status_if_new="pending",
                accept_language=None,
                source_ip=None,
            )
        except InvalidRequest as error:
            return _invalid(number, email_hint, error)
        body: dict[str, Any] = {"email_address": signup.email, "status_if_new": status_if_new}
        if signup.merge_fields:
            body["merge_fields"] = dict(signup.merge_fields)
        if signup.language:
            body["language"] = signup.language
        if signup.tags:
            body["tags"] = list(signup.tags)
        return Planned(number, signup.email, body, list(signup.tags))

    def _read(self, values: dict[str, Any]) -> _RowValues:
        read = _RowValues(SignupFields(source="json", email_field="email"))
        fields = read.fields
        for column, value in _flattened(values):
            meaning = self.columns(column)
            if meaning.meaning == "email":
                fields.email, fields.email_field = (value if isinstance(value, str) else ""), column
            elif meaning.meaning == "merge" and meaning.tag is not None and _is_merge_value(value):
                fields.merge_fields[meaning.tag] = value
                fields.merge_field_names[meaning.tag] = column
            elif meaning.meaning == "tags":
                fields.tags.extend(tag_names(value))
            elif meaning.meaning == "language" and isinstance(value, str) and value.strip():
                fields.language = value.strip()
            elif meaning.meaning == "status" and isinstance(value, str) and value.strip():
                read.status = value.strip().lower()
            elif meaning.meaning == "consent":
                read.consent = _consent(value)
        return read

    def _tags(self, requested: list[str]) -> tuple[list[str], SignupFieldMap]:
        """The row's tags the map allows, and a signup field map that allows exactly those (so
        the signup path's checks apply to them and drop nothing)."""
        if self.field_map.any_tag:
            tags = list(dict.fromkeys(tag for tag in requested if tag))
        else:
            tags = list(
                dict.fromkeys(self.allowed_tags[t.casefold()] for t in requested if t.casefold() in self.allowed_tags)
            )
        if not tags:
            return [], self.fixed_map
        return tags, SignupFieldMap(tags={tag: tag for tag in tags}, default_tags=self.field_map.default_tags)


@dataclass
class _RowValues:
    fields: SignupFields
    status: str | None = None
    consent: bool | None = None


def _is_merge_value(value: Any) -> bool:
    if isinstance(value, bool) or value in ("", {}, None):
        return False
    return isinstance(value, str | int | float | dict)


def _flattened(values: dict[str, Any]) -> list[tuple[str, Any]]:
    """JSON Lines members hold merge fields in an object: each becomes a column of its tag."""
    flat: list[tuple[str, Any]] = []
    for column, value in values.items():
        if column == "merge_fields" and isinstance(value, dict):
            flat.extend((str(tag), item) for tag, item in value.items())
        else:
            flat.append((column, value))
    return flat


def _consent(value: Any) -> bool | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return lax_bool(value)
    except ValueError:
        return False  # anything but a clear yes is no consent


def _invalid(number: int, email: str, error: InvalidRequest) -> RowResult:
    fields = [item.field for item in error.errors]
    if not fields or any(field.casefold() in ("email", "email address", "email_address") for field in fields):
        reason = "invalid-email"
    else:
        reason = "invalid-field"
    detail = "; ".join(f"{item.field}: {item.message}" for item in error.errors) or str(error)
    return RowResult(number, email, "skipped", reason, detail[:300])


# ---------------------------------------------------------------- applying
def apply(lists: Any, list_id: str, planned: Planned) -> RowResult:
    """Upsert one member; raises MailchimpApiError for what is not about the person (a
    transient failure, our configuration) and ImportFailed for a vanished audience."""
    member_id = subscriber_hash(planned.email)
    started = int(time.time()) - CLOCK_SLACK_SECONDS
    try:
        member = lists.set_list_member(list_id, member_id, planned.body)
        changed = _changed_since(member, started)
        missing = _missing_tags(member, planned.tags)
        if missing:
            body = {"tags": [{"name": tag, "status": "active"} for tag in missing]}
            lists.update_list_member_tags(list_id, member_id, body)
            member = {**member, "tags": [*(member.get("tags") or []), *({"name": tag} for tag in missing)]}
            changed = True
    except MailchimpApiError as error:
        reason = _about_the_person(error)
        if reason is None:
            if error.status == 404:
                raise ImportFailed(f"audience {list_id} was not found") from None
            raise
        fields = sorted(
            {str(item.get("field")) for item in error.errors if isinstance(item, dict) and item.get("field")}
        )
        detail = (
            f"{error.title}: {', '.join(fields)}" if fields else error.title
        )  # never Mailchimp's detail (the address)
        return RowResult(planned.number, planned.email, "skipped", reason, detail or None)
    if not changed:
        return RowResult(planned.number, planned.email, "unchanged")
    if _as_the_row_makes_it(member, planned):
        return RowResult(planned.number, planned.email, "created")
    return RowResult(planned.number, planned.email, "updated")


def _changed_since(member: dict[str, Any], started: int) -> bool:
    try:
        return datetime.fromisoformat(str(member.get("last_changed"))).timestamp() >= started
    except ValueError:
        return True


def _missing_tags(member: dict[str, Any], tags: list[str]) -> list[str]:
    if not tags:
        return []
    present = {str(tag.get("name", "")).casefold() for tag in member.get("tags") or [] if isinstance(tag, dict)}
    return [tag for tag in tags if tag.casefold() not in present]


def _as_the_row_makes_it(member: dict[str, Any], planned: Planned) -> bool:
    """Whether the member is exactly what the row alone creates: the row's status, tags and
    language, and no merge field the row did not set."""
    if member.get("status") != planned.body["status_if_new"]:
        return False
    tags = {str(tag.get("name", "")).casefold() for tag in member.get("tags") or [] if isinstance(tag, dict)}
    if tags != {tag.casefold() for tag in planned.tags}:
        return False
    if member.get("language") not in ("", None, planned.body.get("language")):
        return False
    wanted = planned.body.get("merge_fields") or {}
    for tag, value in (member.get("merge_fields") or {}).items():
        if value in ("", None, {}) or (isinstance(value, dict) and not any(value.values())):
            continue
        if tag not in wanted:
            return False
    return True


def _about_the_person(error: MailchimpApiError) -> str | None:
    """Mailchimp's 400s about the person as the row's reason; None for anything else."""
    if error.status != 400:
        return None
    detail = error.detail.lower()
    known = (
        (error.title == "Forgotten Email Not Subscribed", "forgotten"),
        (error.title == "Member In Compliance State", "compliance-state"),
        ("looks fake or invalid" in detail, "looks-fake"),
        ("signed up to a lot of lists very recently" in detail, "too-many-signups"),
        ("valid email address" in detail, "invalid-email"),
        (bool(error.errors), "invalid-field"),
    )
    return next((reason for matches, reason in known if matches), "rejected")
