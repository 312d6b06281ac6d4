"""The signup domain model: one person to upsert into one audience.

The direct path (``POST /subscribe``), the signup worker (queued signups) and the registration
hook's newsletter opt-in all speak this model, so a queued signup is applied exactly as a
direct one would have been.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SignupSource = Literal["form", "json", "registration-hook"]


class Signup(BaseModel):
    model_config = ConfigDict(frozen=True)

    list_id: str = Field(min_length=1)
    email: str = Field(min_length=3, max_length=254)
    status_if_new: Literal["pending", "subscribed"] = "pending"
    merge_fields: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    interests: dict[str, bool] = Field(default_factory=dict)
    language: str | None = None
    ip_signup: str | None = None
    timestamp_signup: datetime | None = None
    marketing_permissions: list[dict[str, Any]] = Field(default_factory=list)
    source: SignupSource = "json"


class QueuedSignup(BaseModel):
    """A signup that could not be applied right away, on the signup queue."""

    # Built on first use: POST /subscribe needs it only when Mailchimp cannot take a signup.
    model_config = ConfigDict(defer_build=True)

    signup: Signup
    queued_at: datetime
    reason: str
    request_id: str | None = None


# ---------------------------------------------------------------- POST /subscribe
SignupOutcome = Literal["pending", "subscribed", "already_subscribed", "queued"]
# One step finer than the status people see: "already_pending" answers "pending" (they signed
# up before and have not confirmed; Mailchimp sends no new confirmation email).
SignupResult = Literal["pending", "already_pending", "subscribed", "already_subscribed", "queued"]


class SignupAnswer(BaseModel):
    """What a person (or the page they used) is told after a signup."""

    status: SignupOutcome
    message: str
    # For redirects and metrics; not part of the JSON answer.
    result: SignupResult | None = Field(default=None, exclude=True)


class FormToken(BaseModel):
    """``GET /subscribe/token``: a signed timestamp for the form's ``_form_token`` field."""

    model_config = ConfigDict(defer_build=True)

    form_token: str


class MarketingPermission(BaseModel):
    marketing_permission_id: str = Field(min_length=1, max_length=64)
    enabled: bool


MergeValue = str | int | float | bool | dict[str, str]


class SignupRequest(BaseModel):
    """The JSON body of ``POST /subscribe``. Unknown members are ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)

    email: str = Field(max_length=320)
    first_name: str | None = Field(default=None, max_length=255)
    last_name: str | None = Field(default=None, max_length=255)
    merge_fields: dict[str, MergeValue] = Field(default_factory=dict, max_length=60)
    tags: list[str] = Field(default_factory=list, max_length=50)
    interests: dict[str, bool] | list[str] = Field(default_factory=dict, max_length=100)
    language: str | None = Field(default=None, max_length=20)
    marketing_permissions: list[MarketingPermission] = Field(default_factory=list, max_length=20)
    honeypot: str | None = Field(default=None, alias="_honeypot", max_length=1000)
    form_token: str | None = Field(default=None, alias="_form_token", max_length=200)


class SignupSubmission(BaseModel):
    """One ``POST /subscribe`` as the signup logic needs it: the raw body and the few request
    facts that matter (built by the handler from the API Gateway event)."""

    model_config = ConfigDict(frozen=True)

    body: bytes
    content_type: str | None = None
    user_agent: str | None = None
    accept: str | None = None
    accept_language: str | None = None
    source_ip: str | None = None
    request_id: str | None = None


class SignupFieldMap(BaseModel):
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

    model_config = ConfigDict(frozen=True, extra="forbid")

    merge_fields: dict[str, str] = Field(default_factory=dict)
    any_merge_tag: bool = True
    tags: dict[str, str] = Field(default_factory=dict)
    interests: dict[str, str] = Field(default_factory=dict)
    default_tags: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("tags", "interests", mode="before")
    @classmethod
    def _list_means_same_name(cls, value: Any) -> Any:
        return {str(item): str(item) for item in value} if isinstance(value, list) else value

    @field_validator("merge_fields")
    @classmethod
    def _merge_tags_are_upper_case(cls, value: dict[str, str]) -> dict[str, str]:
        return {field: tag.strip().upper() for field, tag in value.items()}
