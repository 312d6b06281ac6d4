"""Applying one signup to Mailchimp: what the direct path and the signup worker share.

A form is anonymous: whoever types an address may be a stranger. So by default a signup may
add a new person (with their fields, language, signup IP and marketing permissions) and add
tags, but never overwrites what an existing member has: merge fields, language, interests,
marketing permissions, ``ip_signup``. ``Signup.update_existing`` (template parameter
``SignupUpdateExisting``) opts in to updating, for sites whose users sign in first.

The requests, cheapest first for the common case, a person who is not on the list yet:

1. ``POST /lists/{id}/members`` (create only): one request adds a new person, tags included
   (an archived contact, whom the audience's owner removed, is added back the same way).
   A ``GET`` first would cost every new person a second request.
2. Only when it answers "Member Exists": ``GET`` the member's status and tags (or, with
   ``update_existing``, the ``PUT`` upsert on the lowercased MD5, which answers the same), then
   - subscribed stays subscribed, never pending again;
   - pending stays pending; Mailchimp sends no second confirmation (``already_pending``);
   - unsubscribed becomes pending, the only legal way back (the person confirms by email);
   - a ``transactional`` contact (known from purchases, never subscribed) joins with the
     status a new person gets;
   - cleaned (bounced) cannot be re-added.
   Status changes are a ``PATCH`` of the status alone; tags an existing member lacks go
   through the tags endpoint (Mailchimp applies ``tags`` in a body only when it creates).

Every call is safe to repeat, so a queued signup applied twice changes nothing the second time.
"""

from __future__ import annotations

import hashlib
from datetime import UTC
from typing import Any, Literal

from chimpbridge import clients
from chimpbridge.errors import FieldError, InvalidRequest, MailchimpApiError, Rejected
from chimpbridge.models.signup import Signup

# "already_pending": they had signed up before and not confirmed; no new confirmation email.
AppliedOutcome = Literal["pending", "already_pending", "subscribed", "already_subscribed"]
MEMBER_EXISTS = "Member Exists"  # Mailchimp's title when POST /members meets a known address

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


def create_body(signup: Signup) -> dict[str, Any]:
    """The ``POST`` body of a new member: only what is known."""
    body: dict[str, Any] = {"email_address": signup.email, "status": signup.status_if_new}
    body.update(_details(signup))
    if signup.tags:
        body["tags"] = list(signup.tags)
    return body


def upsert_body(signup: Signup) -> dict[str, Any]:
    """The ``PUT`` body (``update_existing``): only what is known, so an update never blanks a field."""
    return {"email_address": signup.email, "status_if_new": signup.status_if_new, **_details(signup)}


def _details(signup: Signup) -> dict[str, Any]:
    """What a signup says about the person: set on a new member, overwritten only with ``update_existing``."""
    body: dict[str, Any] = {}
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
    return body


def apply_signup(
    signup: Signup,
    *,
    skip_merge_validation: bool = False,
    merge_field_names: dict[str, str] | None = None,
) -> AppliedOutcome:
    """Add ``signup`` (or, for an existing member, only what the module docstring allows).
    Raises ``Rejected``/``InvalidRequest`` for answers about the person, ``MailchimpApiError``
    for everything else (``.transient`` says whether to try again; a 400 that is not about the
    person is about our configuration)."""
    lists = clients.marketing().lists
    member_id = subscriber_hash(signup.email)
    query = {"skip_merge_validation": "true"} if skip_merge_validation else {}
    try:
        try:
            created = lists.add_list_member(signup.list_id, create_body(signup), **query)
        except MailchimpApiError as error:
            if error.status != 400 or error.title != MEMBER_EXISTS:
                raise
        else:
            return "subscribed" if created.get("status") == "subscribed" else "pending"
        return _existing(lists, signup, member_id, query)
    except MailchimpApiError as error:
        raise _about_the_person(error, merge_field_names or {}) or error from None


def _existing(lists: Any, signup: Signup, member_id: str, query: dict[str, str]) -> AppliedOutcome:
    """The signup of someone already in the audience (in any status)."""
    if signup.update_existing:
        member = lists.set_list_member(signup.list_id, member_id, upsert_body(signup), **query)
    else:
        member = lists.get_list_member(signup.list_id, member_id, fields=["status", "tags"])
    status = str(member.get("status"))
    if status == "cleaned":
        raise Rejected("signup-cleaned", CLEANED)
    if signup.tags:
        _add_missing_tags(lists, signup, member_id, member)
    if status == "pending":
        return "already_pending"  # confirmation sent back then; Mailchimp sends none now
    if status in ("unsubscribed", "transactional"):
        # The status alone: the person confirms (pending) before anything else is theirs.
        wanted = "pending" if status == "unsubscribed" else signup.status_if_new
        lists.update_list_member(signup.list_id, member_id, {"status": wanted})
        return "pending" if wanted == "pending" else "subscribed"
    return "already_subscribed"


def _add_missing_tags(lists: Any, signup: Signup, member_id: str, member: dict[str, Any]) -> None:
    present = {str(tag.get("name", "")).casefold() for tag in member.get("tags") or [] if isinstance(tag, dict)}
    missing = [tag for tag in signup.tags if tag.casefold() not in present]
    if missing:
        body = {"tags": [{"name": tag, "status": "active"} for tag in missing]}
        lists.update_list_member_tags(signup.list_id, member_id, body)


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
