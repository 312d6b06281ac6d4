"""Typed configuration. The only module that reads ``os.environ``.

Each model lists the variables one concern needs, by their environment names. ``load()``
parses a model once per container and caches it; a missing or malformed variable fails the
first invocation with a message that names it (never its value).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, Json, ValidationError, field_validator, model_validator

from chimpbridge.errors import ConfigurationError
from chimpbridge.models.signup import SignupFieldMap

Seconds = Annotated[float, Field(gt=0)]


class EnvModel(BaseModel):
    """Fields are declared with ``alias=<ENV_NAME>``; unknown variables are ignored."""

    # Schemas are built on first use: each function loads only the few settings it needs.
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True, defer_build=True)


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


class TracingSettings(EnvModel):
    """Whether X-Ray tracing is on, decided as Powertools decides it: inside Lambda, unless
    POWERTOOLS_TRACE_DISABLED is set or ``sam local`` runs the function."""

    disabled: bool = Field(alias="POWERTOOLS_TRACE_DISABLED", default=False)
    lambda_task_root: str | None = Field(alias="LAMBDA_TASK_ROOT", default=None)
    sam_local: bool = Field(alias="AWS_SAM_LOCAL", default=False)

    @property
    def enabled(self) -> bool:
        return bool(self.lambda_task_root) and not (self.disabled or self.sam_local)


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


# ---------------------------------------------------------------- registration hook and emails
class EmailFlow(BaseModel):
    """Which email one hook (``POST /hooks/<name>``) sends: the bundle's own template files
    (``template``: ``<name>.html`` + ``<name>.txt`` in chimpbridge/templates) or a template
    stored in Mandrill (``mandrill_template``, sent with ``messages/send-template``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    template: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    mandrill_template: str | None = Field(default=None, min_length=1, max_length=200)
    subject: str | None = Field(default=None, min_length=1, max_length=200)
    merge_language: Literal["handlebars", "mailchimp"] = "handlebars"
    tags: list[str] = Field(default_factory=list, max_length=5)

    @model_validator(mode="after")
    def _one_template(self) -> EmailFlow:
        if (self.template is None) == (self.mandrill_template is None):
            raise ValueError("set exactly one of template (bundle files) or mandrill_template")
        if self.template is not None and self.subject is None:
            raise ValueError("a bundle template needs a subject")
        return self


HOOK_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"


def _json_object(value: object) -> object:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg})") from None
    return value


def _default_flows() -> dict[str, EmailFlow]:
    """What an unset (or empty) ``EMAIL_FLOWS`` means; the template's ``EmailFlows`` parameter
    defaults to empty, so this is the one place the default is written."""
    return {"registration": EmailFlow(template="welcome", subject="Welcome to {{product_name}}")}


class EmailFlowSettings(EnvModel):
    """``EMAIL_FLOWS``: hook name -> :class:`EmailFlow`, as JSON. Read by the hook (which names
    exist) and by the sender (what to send), so both always agree."""

    flows: dict[Annotated[str, Field(pattern=HOOK_NAME_PATTERN)], EmailFlow] = Field(
        alias="EMAIL_FLOWS", default_factory=_default_flows, min_length=1
    )

    _parse = field_validator("flows", mode="before")(_json_object)


class IdempotencySettings(EnvModel):
    """The Powertools idempotency table (key ``id``, TTL ``expiration``)."""

    table_name: str = Field(alias="IDEMPOTENCY_TABLE", min_length=1)


class HookSettings(EnvModel):
    """The registration hook: who may call it, where emails (and opted-in signups) are queued."""

    keys_secret_arn: str = Field(alias="HOOK_KEYS_SECRET_ARN")
    # Kratos' api_key auth sends the key in a header of the operator's choosing; basic_auth
    # always uses Authorization.
    auth_header: str = Field(alias="HOOK_AUTH_HEADER", default="Authorization", min_length=1)
    email_queue_url: str = Field(alias="EMAIL_QUEUE_URL")
    # Seconds a (hook, identity, flow) is remembered by the hook; the sender remembers longer.
    dedupe_seconds: int = Field(alias="HOOK_DEDUPE_SECONDS", default=86_400, ge=60)
    # A boolean trait (``traits.<name>``, dotted one level deep) that also subscribes the person.
    newsletter_trait: str | None = Field(alias="NEWSLETTER_OPT_IN_TRAIT", default=None, max_length=100)
    signup_queue_url: str | None = Field(alias="SIGNUP_QUEUE_URL", default=None)
    list_id: str | None = Field(alias="MAILCHIMP_LIST_ID", default=None)

    @model_validator(mode="after")
    def _opt_in_needs_a_queue(self) -> HookSettings:
        if self.newsletter_trait and not (self.signup_queue_url and self.list_id):
            raise ValueError("NEWSLETTER_OPT_IN_TRAIT needs SIGNUP_QUEUE_URL and MAILCHIMP_LIST_ID")
        return self


class EmailSettings(EnvModel):
    """The email sender: who the email is from, how hard it retries, how long it remembers."""

    from_email: str = Field(alias="EMAIL_FROM_ADDRESS", pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    from_name: str = Field(alias="EMAIL_FROM_NAME", default="", max_length=100)
    reply_to: str | None = Field(alias="EMAIL_REPLY_TO", default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    # Records of one batch sent at once (Mandrill connections: concurrency x MaximumConcurrency).
    send_concurrency: int = Field(alias="EMAIL_SEND_CONCURRENCY", default=5, ge=1, le=10)
    # A failed record is retried after base * 2^(receives - 1) seconds (with jitter), at most max.
    retry_base_seconds: int = Field(alias="EMAIL_RETRY_BASE_DELAY_SECONDS", default=10, ge=0, le=900)
    retry_max_seconds: int = Field(alias="EMAIL_RETRY_MAX_DELAY_SECONDS", default=900, ge=0, le=43_200)
    queue_url: str | None = Field(alias="EMAIL_QUEUE_URL", default=None)
    # How long a sent email is remembered: longer than a message can live in queue + DLQ.
    dedupe_days: int = Field(alias="EMAIL_DEDUPE_DAYS", default=30, ge=1, le=365)
    # Mandrill's answer to a send was lost (read timeout): "resend" never risks a missing email,
    # "skip" never risks a second one. See README, "Exactly once".
    on_uncertain_send: Literal["resend", "skip"] = Field(alias="EMAIL_ON_UNCERTAIN_SEND", default="resend")


# ---------------------------------------------------------------- newsletter signup
class SignupSettings(EnvModel):
    """``POST /subscribe``: which audience, how people join it, and what a form may set."""

    list_id: str = Field(alias="MAILCHIMP_LIST_ID", min_length=1)
    queue_url: str = Field(alias="SIGNUP_QUEUE_URL", min_length=1)
    # Double opt-in (the default) adds new people as "pending" until they confirm by email.
    double_opt_in: bool = Field(alias="SIGNUP_DOUBLE_OPT_IN", default=True)
    field_map: Json[SignupFieldMap] = Field(alias="SIGNUP_FIELD_MAP", default_factory=SignupFieldMap)
    form_secret_arn: str | None = Field(alias="SIGNUP_FORM_SECRET_ARN", default=None)
    success_redirect_url: str | None = Field(alias="SIGNUP_SUCCESS_REDIRECT_URL", default=None, pattern="^https?://")
    error_redirect_url: str | None = Field(alias="SIGNUP_ERROR_REDIRECT_URL", default=None, pattern="^https?://")
    # The audience's hosted signup form: where a "forgotten" address must re-subscribe itself.
    hosted_form_url: str | None = Field(alias="SIGNUP_HOSTED_FORM_URL", default=None, pattern="^https?://")
    max_body_bytes: int = Field(alias="SIGNUP_MAX_BODY_BYTES", default=16_384, ge=1_024, le=1_048_576)

    @property
    def status_if_new(self) -> Literal["pending", "subscribed"]:
        return "pending" if self.double_opt_in else "subscribed"


class SignupWorkerSettings(EnvModel):
    """The signup worker: how many queued signups it applies at once, and how long a record that
    failed for a passing reason waits before its next try."""

    queue_url: str | None = Field(alias="SIGNUP_QUEUE_URL", default=None)
    # Records of one batch applied at once; times the event source's MaximumConcurrency this is
    # the worker's share of Mailchimp's 10 connections per account (3 x 2 = 6; an export takes 4).
    concurrency: int = Field(alias="SIGNUP_WORKER_CONCURRENCY", default=3, ge=1, le=10)
    retry_base_seconds: int = Field(alias="SIGNUP_RETRY_BASE_DELAY_SECONDS", default=15, ge=0, le=900)
    retry_max_seconds: int = Field(alias="SIGNUP_RETRY_MAX_DELAY_SECONDS", default=900, ge=0, le=43_200)


# ---------------------------------------------------------------- audience export
class ExportSettings(EnvModel):
    """The scheduled audience export: where it writes, and how hard it pulls on Mailchimp."""

    state_table: str = Field(alias="STATE_TABLE", min_length=1)
    bucket: str = Field(alias="EXPORT_BUCKET", min_length=1)
    # Pages fetched at once = connections held. Mailchimp allows 10 per account, shared with
    # signups and everything else; the default leaves room for them.
    concurrency: int = Field(alias="EXPORT_CONCURRENCY", default=4, ge=1, le=10)
    part_size_mib: int = Field(alias="EXPORT_PART_SIZE_MIB", default=8, ge=5, le=512)
    # Stop taking new pages this long before the Lambda deadline, then checkpoint.
    stop_before_deadline_seconds: Seconds = Field(alias="EXPORT_STOP_BEFORE_DEADLINE_SECONDS", default=60)
    # 0: as many as the invocation's time allows. A limit makes invocations short and even.
    max_pages_per_invocation: int = Field(alias="EXPORT_MAX_PAGES_PER_INVOCATION", default=0, ge=0)
    # A run exports members changed before (its start - this): covers clock skew between
    # Lambda and Mailchimp, so a change stamped during the run can never fall inside the run.
    settle_seconds: int = Field(alias="EXPORT_SETTLE_SECONDS", default=10, ge=0, le=3600)
    # The longest the state machine waits before calling the function again (the largest wait
    # of its Retry rules, statemachine/audience_export.asl.json). A run's lock lease runs to the
    # invocation's deadline plus this plus a margin, so it never lapses under a live run.
    max_retry_delay_seconds: int = Field(alias="EXPORT_MAX_RETRY_DELAY_SECONDS", default=600, ge=0, le=3600)
