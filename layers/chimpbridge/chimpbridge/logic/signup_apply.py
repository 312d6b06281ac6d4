"""Applying one signup to Mailchimp: the upsert that the direct path and the signup worker share.

``PUT /lists/{id}/members/{md5(lower(email))}`` with ``status_if_new`` creates or updates in
one idempotent call (``POST /members`` fails with "Member Exists" the second time). Then:

- subscribed stays subscribed (never pending again); merge fields are updated;
- pending stays pending; Mailchimp does not send the confirmation email again, so the direct
  path (which tells the person) first reads whether they were pending already;
- unsubscribed becomes pending: the only legal way back, the person confirms by email;
- a ``transactional`` contact (known from purchases, never subscribed) joins like a new one;
- cleaned (bounced) cannot be re-added;
- tags only apply when a member is created, so missing ones go through the tags endpoint.

Every call is safe to repeat, so a queued signup applied twice changes nothing the second time.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from chimpbridge import clients
from chimpbridge.errors import FieldError, InvalidRequest, MailchimpApiError, Rejected
from chimpbridge.models.signup import Signup

# "already_pending": they had signed up before and not confirmed; no new confirmation email.
AppliedOutcome = Literal["pending", "already_pending", "subscribed", "already_subscribed"]
# A member whose opt-in is at most this old joined with this very signup (single opt-in).
JUST_OPTED_IN = timedelta(minutes=2)

FORGOTTEN = (
    "This address was removed from our list at its owner's request, so we cannot add it back "
    "ourselves. Please sign up again through our signup form."
)
CLEANED = (
    "Emails to this address have bounced, so we cannot add it to the list. Please check the address or use another one."
)
FAKE = "This email address looks fake or mistyped. Please check it, or use an address you can receive mail at."
TOO_MANY = (
    "This address has signed up to many lists in a short time, so new signups for it are paused. "
    "Please try again in a few hours."
)
COMPLIANCE = (
    "This address unsubscribed or bounced before and cannot be subscribed directly. "
    "Please sign up again through our signup form."
)


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 of the lower-cased address (not a security use)."""
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def upsert_body(signup: Signup) -> dict[str, Any]:
    """The PUT body: only what is known, so an update never blanks a field."""
    body: dict[str, Any] = {"email_address": signup.email, "status_if_new": signup.status_if_new}
    if signup.merge_fields:
        body["merge_fields"] = dict(signup.merge_fields)
    if signup.interests:
        body["interests"] = dict(signup.interests)
    if signup.language:
        body["language"] = signup.language
    if signup.ip_signup:
        body["ip_signup"] = signup.ip_signup
    if signup.timestamp_signup:
        body["timestamp_signup"] = signup.timestamp_signup.astimezone(UTC).isoformat(timespec="seconds")
    if signup.marketing_permissions:
        body["marketing_permissions"] = list(signup.marketing_permissions)
    if signup.tags:
        body["tags"] = list(signup.tags)  # applied by Mailchimp only if this creates the member
    return body


def apply_signup(
    signup: Signup,
    *,
    skip_merge_validation: bool = False,
    merge_field_names: dict[str, str] | None = None,
    tell_already_pending: bool = False,
) -> AppliedOutcome:
    """Upsert ``signup``. Raises ``Rejected``/``InvalidRequest`` for answers about the person,
    ``MailchimpApiError`` for everything else (``.transient`` says whether to try again; a
    400 that is not about the person is about our configuration).

    ``tell_already_pending`` spends one ``GET`` (with double opt-in) to tell a person still to
    confirm an earlier signup (``already_pending``) from one who was just sent the email."""
    lists = clients.marketing().lists
    member_id = subscriber_hash(signup.email)
    started = datetime.now(UTC)
    query = {"skip_merge_validation": "true"} if skip_merge_validation else {}
    try:
        was_pending = (
            tell_already_pending
            and signup.status_if_new == "pending"
            and _current_status(lists, signup.list_id, member_id) == "pending"
        )
        member = lists.set_list_member(signup.list_id, member_id, upsert_body(signup), **query)
        status = member.get("status")
        if status == "cleaned":
            raise Rejected("signup-cleaned", CLEANED)
        if status in ("unsubscribed", "transactional"):
            wanted = "pending" if status == "unsubscribed" else signup.status_if_new
            member = lists.update_list_member(signup.list_id, member_id, {"status": wanted})
            status = member.get("status")
        elif status == "pending" and signup.status_if_new == "subscribed":
            was_pending = True  # with single opt-in a new member would be subscribed
        if signup.tags:
            _add_missing_tags(lists, signup, member_id, member)
    except MailchimpApiError as error:
        raise _about_the_person(error, merge_field_names or {}) or error from None
    if status == "pending":
        return "already_pending" if was_pending else "pending"
    if signup.status_if_new == "subscribed" and _opted_in_since(member, started - JUST_OPTED_IN):
        return "subscribed"
    return "already_subscribed"


def _current_status(lists: Any, list_id: str, member_id: str) -> str | None:
    """The member's status before this signup; None for a new address."""
    try:
        member = lists.get_list_member(list_id, member_id, fields=["status"])
    except MailchimpApiError as error:
        if error.status == 404:
            return None
        raise
    return str(member.get("status")) if isinstance(member, dict) else None


def _add_missing_tags(lists: Any, signup: Signup, member_id: str, member: dict[str, Any]) -> None:
    present = {str(tag.get("name", "")).casefold() for tag in member.get("tags") or [] if isinstance(tag, dict)}
    missing = [tag for tag in signup.tags if tag.casefold() not in present]
    if missing:
        body = {"tags": [{"name": tag, "status": "active"} for tag in missing]}
        lists.update_list_member_tags(signup.list_id, member_id, body)


def _opted_in_since(member: dict[str, Any], since: datetime) -> bool:
    try:
        opted_in = datetime.fromisoformat(str(member.get("timestamp_opt") or ""))
    except ValueError:
        return False
    if opted_in.tzinfo is None:
        opted_in = opted_in.replace(tzinfo=UTC)
    return opted_in >= since


def _about_the_person(error: MailchimpApiError, field_names: dict[str, str]) -> Rejected | InvalidRequest | None:
    """Mailchimp's 400s about the person, as answers they can act on: their address, their
    consent, a field they filled in (``field_names``: merge tag -> the name they used). None for
    anything else: outages, and our configuration (an interest or marketing permission id, a
    merge field the form does not collect or whose type changed), which must never be final:
    the direct path queues the signup and the worker leaves it for a retry and the DLQ."""
    if error.status != 400:
        return None
    detail = error.detail.lower()
    known = (
        (error.title == "Forgotten Email Not Subscribed", "signup-forgotten", FORGOTTEN),
        (error.title == "Member In Compliance State", "signup-compliance-state", COMPLIANCE),
        ("looks fake or invalid" in detail, "signup-email-looks-fake", FAKE),
        ("signed up to a lot of lists very recently" in detail, "signup-too-many-signups", TOO_MANY),
    )
    for matches, kind, message in known:
        if matches:
            return Rejected(kind, message)
    email_field = field_names.get("EMAIL", "email")
    if "valid email address" in detail:
        message = "Enter a valid email address, like name@example.org."
        return InvalidRequest("Check your email address.", [FieldError(email_field, message)])
    persons = {"email_address": email_field, **field_names}
    field_errors = [
        FieldError(persons[str(item.get("field"))], _field_message(item))
        for item in error.errors
        if isinstance(item, dict) and str(item.get("field")) in persons
    ]
    if field_errors:
        return InvalidRequest("Some fields are missing or invalid.", field_errors)
    return None


def _field_message(item: dict[str, Any]) -> str:
    # Mailchimp's own wording stays in the logs; people get ours.
    if "enter a value" in str(item.get("message") or "").lower():
        return "Please fill in this field."
    return "Check this field: its value is not in the expected format."
