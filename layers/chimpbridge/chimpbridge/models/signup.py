"""The signup domain model: one person to upsert into one audience.

The direct path (``POST /subscribe``), the signup worker (queued signups) and the registration
hook's newsletter opt-in all speak this model, so a queued signup is applied exactly as a
direct one would have been.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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

    signup: Signup
    queued_at: datetime
    reason: str
    request_id: str | None = None
