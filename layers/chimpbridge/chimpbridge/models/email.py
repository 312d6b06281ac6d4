"""Transactional emails: the message on the email queue and what the sender remembers of it.

A queued :class:`EmailMessage` names its hook, not its template: the template, subject and
sender come from configuration when it is sent, so a fix to the configuration also applies to
messages already waiting (or re-driven from the DLQ).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chimpbridge.models.hooks import PersonName
from chimpbridge.models.keys import flow_key, key_part

SEND_SUCCESS_STATUSES = frozenset({"sent", "queued", "scheduled"})
SEND_PERMANENT_STATUSES = frozenset({"rejected", "invalid"})
# Rejections about the address (Mandrill's reject list), not about us (an unverified sending
# domain rejects everyone as "unsigned"): the address is suppressed.
ADDRESS_REJECT_REASONS = frozenset({"hard-bounce", "spam", "unsub", "custom"})


def idempotency_key(hook: str, identity_id: UUID, flow_id: str) -> str:
    """One email per (hook, identity, flow): the same for every retry of a delivery, for a
    second delivery of the same registration under another trigger id, and for any spelling
    of the same parts (hook names have no case; the identity is a UUID)."""
    hook = key_part(hook).lower()
    digest = hashlib.sha256(f"{hook}\n{identity_id}\n{flow_key(flow_id)}".encode()).hexdigest()[:32]
    return f"{hook}:{digest}"


class Recipient(BaseModel):
    model_config = ConfigDict(frozen=True)

    email: str
    name: PersonName = Field(default_factory=PersonName)
    locale: str | None = None


class EmailMessage(BaseModel):
    """One email to send, as queued by the hook (JSON on the email queue)."""

    model_config = ConfigDict(frozen=True)

    version: Literal[1] = 1
    idempotency_key: str = Field(min_length=1, max_length=100)
    hook: str
    identity_id: UUID
    flow_id: str
    flow_type: str | None = None
    recipient: Recipient
    transient_payload: dict[str, Any] = Field(default_factory=dict)
    trigger_id: str | None = None
    request_id: str | None = None
    queued_at: datetime

    @field_validator("idempotency_key")
    @classmethod
    def _one_spelling(cls, value: str) -> str:
        """The sender's dedupe key: messages queued by other producers, or by hand for a re-drive,
        may spell it with stray whitespace or another Unicode form."""
        return key_part(value)


class RecipientResult(BaseModel):
    """Mandrill's verdict for one recipient (the address itself is not kept)."""

    status: str
    reject_reason: str | None = None
    mandrill_id: str | None = None


class SendOutcome(BaseModel):
    """What happened to one message; stored as the idempotency record's result."""

    outcome: Literal["sent", "rejected", "uncertain", "suppressed"]
    recipients: list[RecipientResult] = Field(default_factory=list)
    api_call: Literal["messages/send", "messages/send-template"] | None = None
    duplicate: bool = False  # true when this answer came from the idempotency record
    suppressed_reason: str | None = None  # why the address is suppressed (outcome "suppressed")

    @property
    def reject_reasons(self) -> list[str]:
        return [r.reject_reason or r.status for r in self.recipients if r.status not in SEND_SUCCESS_STATUSES]
