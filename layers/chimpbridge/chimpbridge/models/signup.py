"""The signup domain model: one person to upsert into one audience.

The direct path (``POST /subscribe``), the signup worker (queued signups) and the registration
hook's newsletter opt-in all speak this model, so a queued signup is applied exactly as a
direct one would have been.

These are frozen dataclasses with explicit checks, not pydantic models: they are all the signup
function needs, and importing pydantic would lengthen its cold start, which is measured against
a tutorial handler (docs/benchmarks.md, "Cold start of every function"). The JSON
body of ``POST /subscribe`` is read and checked in :mod:`chimpbridge.logic.signup_form`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

from chimpbridge.models.checks import expect, expect_text_list, json_members

if TYPE_CHECKING:
    from chimpbridge.models.import_field_map import ImportFieldMap

SignupSource = Literal["form", "json", "registration-hook"]
StatusIfNew = Literal["pending", "subscribed"]


@dataclass(frozen=True, kw_only=True)
class Signup:
    list_id: str
    email: str
    status_if_new: StatusIfNew = "pending"
    merge_fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    interests: dict[str, bool] = field(default_factory=dict)
    language: str | None = None
    ip_signup: str | None = None
    timestamp_signup: datetime | None = None
    marketing_permissions: list[dict[str, Any]] = field(default_factory=list)
    source: SignupSource = "json"
    # Overwrite an existing member's details (SignupUpdateExisting): only where people sign in.
    update_existing: bool = False

    def __post_init__(self) -> None:
        if not self.list_id:
            raise ValueError("list_id is empty")
        if not 3 <= len(self.email) <= 254:
            raise ValueError("email must be 3 to 254 characters")
        if self.status_if_new not in get_args(StatusIfNew):
            raise ValueError("status_if_new must be pending or subscribed")
        if self.source not in get_args(SignupSource):
            raise ValueError("source is unknown")

    def to_document(self) -> dict[str, Any]:
        document = {name: value for name, value in asdict(self).items() if value is not None}
        if not self.update_existing:
            del document["update_existing"]  # the default: messages of older versions lack it too
        if self.timestamp_signup is not None:
            document["timestamp_signup"] = self.timestamp_signup.isoformat()
        return document

    @classmethod
    def from_document(cls, document: Any) -> Signup:
        """A signup as :meth:`to_document` wrote it; raises ValueError for anything else."""
        members = json_members(document, cls)
        expect(members, str, "list_id", "email", "status_if_new", "language", "ip_signup", "source")
        expect(members, dict, "merge_fields", "interests")
        expect(members, list, "marketing_permissions")
        expect(members, bool, "update_existing")
        expect_text_list(members, "tags")
        if not all(isinstance(wanted, bool) for wanted in members.get("interests", {}).values()):
            raise ValueError("interests must map ids to true or false")
        if "timestamp_signup" in members:
            members["timestamp_signup"] = _datetime(members["timestamp_signup"], "timestamp_signup")
        if "list_id" not in members or "email" not in members:
            raise ValueError("a signup needs list_id and email")
        return cls(**members)


@dataclass(frozen=True, kw_only=True)
class QueuedSignup:
    """A signup that could not be applied right away: one message on the signup queue."""

    signup: Signup
    queued_at: datetime
    reason: str
    request_id: str | None = None

    def to_json(self) -> str:
        document: dict[str, Any] = {
            "signup": self.signup.to_document(),
            "queued_at": self.queued_at.isoformat(),
            "reason": self.reason,
        }
        if self.request_id is not None:
            document["request_id"] = self.request_id
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> QueuedSignup:
        """Parse a queue message; raises ValueError when it is not a queued signup."""
        members = json_members(json.loads(text), cls)
        expect(members, str, "reason", "request_id")
        if not {"signup", "queued_at", "reason"} <= members.keys():
            raise ValueError("a queued signup needs signup, queued_at and reason")
        return cls(
            signup=Signup.from_document(members["signup"]),
            queued_at=_datetime(members["queued_at"], "queued_at"),
            reason=members["reason"],
            request_id=members.get("request_id"),
        )


def _datetime(value: Any, name: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an ISO 8601 date and time") from None


# ---------------------------------------------------------------- POST /subscribe
SignupOutcome = Literal["pending", "subscribed", "already_subscribed", "queued"]
# One step finer than the status people see: "already_pending" answers "pending" (they signed
# up before and have not confirmed; Mailchimp sends no new confirmation email).
SignupResult = Literal["pending", "already_pending", "subscribed", "already_subscribed", "queued"]


@dataclass(frozen=True)
class SignupAnswer:
    """What a person (or the page they used) is told after a signup."""

    status: SignupOutcome
    message: str
    # For redirects and metrics; not part of the JSON answer.
    result: SignupResult | None = None

    def to_json(self) -> str:
        return json.dumps({"status": self.status, "message": self.message}, separators=(",", ":"))


MergeValue = str | int | float | bool | dict[str, str]


@dataclass(frozen=True, kw_only=True)
class SignupSubmission:
    """One ``POST /subscribe`` as the signup logic needs it: the raw body and the few request
    facts that matter (built by the handler from the API Gateway event)."""

    body: bytes
    content_type: str | None = None
    user_agent: str | None = None
    accept: str | None = None
    accept_language: str | None = None
    source_ip: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class SignupFieldMap:
    """Which form fields become what (``SIGNUP_FIELD_MAP``, JSON; template parameter
    ``SignupFieldMap``). Only what is listed here reaches Mailchimp: a form (or a bot posting
    to it) cannot set tags or interests that are not allowed.

    - ``merge_fields``: form field -> merge tag, on top of ``first_name``/``last_name`` ->
      ``FNAME``/``LNAME`` and, while ``any_merge_tag`` is true, every field named like a
      merge tag (``FNAME``, ``MMERGE3``, ``ADDRESS[city]``), as Mailchimp's embedded forms post.
    - ``tags``: the tags a form may ask for; a list of names, or form value -> tag name (an
      embedded form posts tag ids in its hidden ``tags`` field).
    - ``interests``: the interests (groups) a form may set; a list of interest ids, or form
      key -> interest id, where an embedded form's ``group[21469][1]`` is ``"21469:1"``.
    - ``default_tags``: applied to every signup through this API.
    """

    merge_fields: dict[str, str] = field(default_factory=dict)
    any_merge_tag: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    interests: dict[str, str] = field(default_factory=dict)
    default_tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        settle_field_map(self)

    @classmethod
    def from_document(cls, document: Any) -> SignupFieldMap:
        members = json_members(document, cls, forbid_unknown=True)
        expect(members, bool, "any_merge_tag")
        if not _text_map(members.get("merge_fields", {})):
            raise ValueError("merge_fields must map field names to merge tags")
        for name in ("tags", "interests"):
            value = members.get(name, {})
            if _names(value):  # a list means the same name on both sides (ids may be numbers)
                members[name] = {str(item): str(item) for item in value}
            elif not _text_map(value):
                raise ValueError(f"{name} must be a list of names or an object of names")
        if not _names(members.get("default_tags", [])):
            raise ValueError("default_tags must be a list of names")
        members["default_tags"] = [str(tag) for tag in members.get("default_tags", [])]
        return cls(**members)


def settle_field_map(field_map: SignupFieldMap | ImportFieldMap) -> None:
    """What the signup and the import field maps both hold: merge tags in upper case, as
    Mailchimp has them, and at most 20 default tags."""
    merge_fields = {name: tag.strip().upper() for name, tag in field_map.merge_fields.items()}
    object.__setattr__(field_map, "merge_fields", merge_fields)
    if len(field_map.default_tags) > 20:
        raise ValueError("default_tags: at most 20")


def _text_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(item, str) for item in value.values())


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str | int) and not isinstance(item, bool) for item in value)
