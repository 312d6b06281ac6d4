"""Typed configuration. The only module that reads ``os.environ``.

Each model lists the variables one concern needs, by their environment names. ``load()``
parses a model once per container and caches it; a missing or malformed variable fails the
first invocation with a message that names it (never its value).
"""

from __future__ import annotations

import functools
import os
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chimpbridge.errors import ConfigurationError

Seconds = Annotated[float, Field(gt=0)]


class EnvModel(BaseModel):
    """Fields are declared with ``alias=<ENV_NAME>``; unknown variables are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)


ModelT = TypeVar("ModelT", bound=EnvModel)


@functools.cache
def load(model: type[ModelT]) -> ModelT:
    """Parse ``model`` from the environment, once per container."""
    try:
        return model.model_validate({k: v for k, v in os.environ.items() if v != ""})
    except ValidationError as exc:
        raise ConfigurationError(_describe(model, exc)) from None


def clear() -> None:
    """Forget parsed settings (tests that change the environment call this)."""
    load.cache_clear()


def _describe(model: type[EnvModel], exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        name = str(error["loc"][0]) if error["loc"] else model.__name__
        if error["type"] == "missing":
            problems.append(f"{name} is not set")
        else:
            problems.append(f"{name} is invalid: {error['msg']}")
    return f"{model.__name__}: " + "; ".join(problems)


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class AwsSettings(EnvModel):
    """What Lambda sets for every function, plus the endpoint override used locally."""

    region: str = Field(alias="AWS_REGION", default="us-east-1")
    endpoint_url: str | None = Field(alias="AWS_ENDPOINT_URL", default=None)
    secrets_endpoint_url: str | None = Field(alias="AWS_ENDPOINT_URL_SECRETS_MANAGER", default=None)
    access_key_id: str | None = Field(alias="AWS_ACCESS_KEY_ID", default=None, repr=False)
    secret_access_key: str | None = Field(alias="AWS_SECRET_ACCESS_KEY", default=None, repr=False)
    session_token: str | None = Field(alias="AWS_SESSION_TOKEN", default=None, repr=False)


class SecretsSettings(EnvModel):
    """How long a secret read from Secrets Manager is trusted before it is read again."""

    max_age_seconds: int = Field(alias="SECRETS_MAX_AGE_SECONDS", default=300, ge=0)


class HttpSettings(EnvModel):
    """Timeouts and retry budget for calls to Mailchimp and Mandrill.

    Request paths must answer well inside API Gateway's 29 s, so the retry budget of one call
    is short by default; queue consumers and exports raise it through their environment.
    """

    connect_timeout: Seconds = Field(alias="MAILCHIMP_CONNECT_TIMEOUT_SECONDS", default=3.05)
    read_timeout: Seconds = Field(alias="MAILCHIMP_READ_TIMEOUT_SECONDS", default=10.0)
    retry_budget: Seconds = Field(alias="MAILCHIMP_RETRY_BUDGET_SECONDS", default=8.0)
    max_attempts: int = Field(alias="MAILCHIMP_MAX_ATTEMPTS", default=4, ge=1, le=10)
    pool_size: int = Field(alias="MAILCHIMP_MAX_CONNECTIONS", default=10, ge=1, le=10)


class MailchimpSettings(EnvModel):
    secret_arn: str = Field(alias="MAILCHIMP_SECRET_ARN")
    # Base URL override (the local sandbox); production derives it from the key's data center.
    api_url: str | None = Field(alias="MAILCHIMP_API_URL", default=None)


class MandrillSettings(EnvModel):
    secret_arn: str = Field(alias="MANDRILL_SECRET_ARN")
    api_url: str | None = Field(alias="MANDRILL_API_URL", default=None)


class ApiSettings(EnvModel):
    """Settings shared by every HTTP-facing function."""

    allowed_origins: list[str] = Field(alias="ALLOWED_ORIGINS", default_factory=list)

    _split = field_validator("allowed_origins", mode="before")(_comma_list)
