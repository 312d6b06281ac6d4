"""What Ory Kratos sends to ``POST /hooks/<name>``: the body our shipped Jsonnet
(``examples/ory/registration-webhook.jsonnet``) renders, and the delivery around it.

The body holds only what an email needs. Kratos' ``ctx`` must never be forwarded whole: it
carries the person's cookies (``ctx.request_cookies``) and request headers. A body that looks
like it does is refused with a message saying so, rather than silently trimmed.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from chimpbridge.models.fields import AddressText, OneLine
from chimpbridge.models.keys import flow_key

# Kratos renders post-persist hooks with the stored identity; a pre-persist hook (or a
# registration hook placed before the identity is written) sends this placeholder instead.
NIL_IDENTITY_ID = UUID(int=0)
TRIGGER_ID_HEADER = "Ory-Webhook-Trigger-ID"
MAX_TRIGGER_ID_LENGTH = 200
# Kratos sends a UUID; anything printable and short is kept (it is only logged and carried).
TRIGGER_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_TRIGGER_ID_LENGTH}}}")
MAX_BODY_BYTES = 16_384

_EMAIL = re.compile(r"^[^@\s\"<>(),;:]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
# Keys of Kratos' ctx that must never leave Kratos; seeing one means ctx was forwarded.
_FORBIDDEN_KEYS = frozenset({"request_cookies", "cookies", "request_headers", "headers", "session", "ctx"})


class PersonName(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    first: OneLine | None = Field(default=None, max_length=100)
    last: OneLine | None = Field(default=None, max_length=100)
    full: OneLine | None = Field(default=None, max_length=200)

    @property
    def first_name(self) -> str:
        return self.first or (self.full.split()[0] if self.full else "")

    @property
    def display(self) -> str:
        return self.full or " ".join(part for part in (self.first, self.last) if part)


class FlowRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: OneLine = Field(min_length=1, max_length=64)
    type: Literal["browser", "api"] | None = None

    @field_validator("id")
    @classmethod
    def _one_spelling(cls, value: str) -> str:
        """The id as the dedupe key reads it (models/email.py), so the queued message says the same."""
        normalised = flow_key(value)
        if not normalised:
            raise ValueError("must not be blank")
        return normalised


class HookRequest(BaseModel):
    """The hook body (what the shipped Jsonnet produces)."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    identity_id: UUID
    email: AddressText = Field(max_length=254)
    name: PersonName = Field(default_factory=PersonName)
    locale: OneLine | None = Field(default=None, max_length=35)
    flow: FlowRef
    transient_payload: dict[str, Any] = Field(default_factory=dict)
    # Boolean traits (consents, opt-ins), keyed by trait name ("newsletter", "consent.newsletter").
    consents: dict[str, bool] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="before")
    @classmethod
    def _never_ctx(cls, data: Any) -> Any:
        if isinstance(data, dict):
            leaked = sorted(_FORBIDDEN_KEYS.intersection(data))
            if leaked:
                raise ValueError(
                    f"the body carries {', '.join(leaked)}: send only the fields of "
                    "examples/ory/registration-webhook.jsonnet, never Kratos' ctx (it holds the person's cookies)"
                )
        return data

    @field_validator("email")
    @classmethod
    def _looks_like_an_address(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("is not an email address")
        return value

    def newsletter_opt_in(self, trait: str | None) -> bool:
        return bool(trait) and self.consents.get(str(trait)) is True


class HookDelivery(BaseModel):
    """One HTTP delivery of a hook, as the handler read it from the request: unchecked, so that
    building it never fails before the caller is authenticated (the logic checks it after). The
    body is not in it: the logic reads it through its own argument once the caller is known."""

    model_config = ConfigDict(frozen=True)

    hook: str
    credential: SecretStr | None = None  # the configured auth header's value, never logged
    trigger_id: str | None = None  # the Ory-Webhook-Trigger-ID header, as sent
    request_id: str | None = None


class HookAccepted(BaseModel):
    """The 202 answer. ``duplicate`` is true when this delivery was already queued."""

    status: Literal["queued"] = "queued"
    hook: str
    idempotency_key: str
    duplicate: bool = False
    newsletter: Literal["queued", "not-requested"] = "not-requested"
