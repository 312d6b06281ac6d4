"""Typed configuration. The only module that reads ``os.environ``.

Each model lists the variables one concern needs, by their environment names. ``load()``
parses a model once per container and caches it; a missing or malformed variable fails the
first invocation with a message that names it (never its value).

The models are frozen dataclasses whose fields say which variable they read and how
(``env(NAME, parser)``), not pydantic models: every function loads settings on its first
invocation, and importing pydantic would lengthen every cold start
(docs/benchmarks.md, "Cold start of every function").
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, dataclass_transform, get_args

from chimpbridge.errors import ConfigurationError
from chimpbridge.models import lax_bool
from chimpbridge.models.checks import (  # the parsers of one variable's text: str -> value or ValueError
    comma_list,
    expect,
    expect_text_list,
    integer,
    json_members,
    json_value,
    one_of,
    seconds,
    text,
)
from chimpbridge.models.import_field_map import ImportFieldMap
from chimpbridge.models.signup import SignupFieldMap

Parser = Callable[[str], Any]


def env(
    name: str,
    parse: Parser = str,
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
    secret: bool = False,
) -> Any:
    """A field read from the variable ``name`` by ``parse`` (which raises ValueError)."""
    metadata = {"env": name, "parse": parse}
    return dataclasses.field(default=default, default_factory=default_factory, repr=not secret, metadata=metadata)


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(env,))
class EnvModel:
    """Fields are declared with ``env(<ENV_NAME>, parser)``; other variables are ignored. A
    model that checks fields together does it in ``__post_init__`` (raising ValueError)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)


ModelT = TypeVar("ModelT", bound=EnvModel)


@functools.cache
def load(model: type[ModelT]) -> ModelT:
    """Parse ``model`` from the environment, once per container."""
    return parse(model, os.environ)


def parse(model: type[ModelT], environ: Mapping[str, str]) -> ModelT:
    """``model`` from ``environ``; every problem is listed, by variable name, in one error."""
    values: dict[str, Any] = {}
    problems = []
    for field in dataclasses.fields(model):  # type: ignore[arg-type]
        name = field.metadata["env"]
        raw = environ.get(name, "").strip()
        if not raw:  # empty means unset, as SAM renders an empty parameter
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                problems.append(f"{name} is not set")
            continue
        try:
            values[field.name] = field.metadata["parse"](raw)
        except ValueError as exc:
            problems.append(f"{name} is invalid: {exc}")
    if not problems:
        try:
            return model(**values)
        except ValueError as exc:
            problems.append(str(exc))
    raise ConfigurationError(f"{model.__name__}: " + "; ".join(problems))


def clear() -> None:
    """Forget parsed settings (tests that change the environment call this)."""
    load.cache_clear()


HTTP_URL = r"^https?://"
EMAIL_ADDRESS = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


# ---------------------------------------------------------------- shared by every function
class AwsSettings(EnvModel):
    """What Lambda sets for every function, plus the endpoint override used locally."""

    region: str = env("AWS_REGION", default="us-east-1")
    endpoint_url: str | None = env("AWS_ENDPOINT_URL", default=None)
    secrets_endpoint_url: str | None = env("AWS_ENDPOINT_URL_SECRETS_MANAGER", default=None)
    access_key_id: str | None = env("AWS_ACCESS_KEY_ID", default=None, secret=True)
    secret_access_key: str | None = env("AWS_SECRET_ACCESS_KEY", default=None, secret=True)
    session_token: str | None = env("AWS_SESSION_TOKEN", default=None, secret=True)
    # Where Lambda serves the execution role's credentials when they are not in the environment,
    # as under SnapStart, whose restored environments outlive keys set at init (docs/snapstart.md).
    container_credentials_uri: str | None = env("AWS_CONTAINER_CREDENTIALS_FULL_URI", default=None)
    container_authorization_token: str | None = env("AWS_CONTAINER_AUTHORIZATION_TOKEN", default=None, secret=True)


class InitSettings(EnvModel):
    """How Lambda started this execution environment. ``snap-start``: it initialises a version
    that later environments are restored from, so what init leaves behind is shared by all of
    them (docs/snapstart.md)."""

    initialization_type: str = env("AWS_LAMBDA_INITIALIZATION_TYPE", default="on-demand")

    @property
    def snapshot(self) -> bool:
        return self.initialization_type == "snap-start"


class SecretsSettings(EnvModel):
    """How long a secret read from Secrets Manager is trusted before it is read again."""

    max_age_seconds: int = env("SECRETS_MAX_AGE_SECONDS", integer(ge=0), default=300)


# Mailchimp's connection budget, argued here once. Mailchimp allows 10 simultaneous
# connections per account, for all of our functions together, and answers 429 beyond them. Each
# client holds at most MAILCHIMP_MAX_CONNECTIONS (the transport's pool blocks extra threads), and
# the template gives each function its share: the signup worker 3 records at once x its event
# source's MaximumConcurrency 2 = 6, plus an export's 4 (EXPORT_CONCURRENCY) while one runs: 10
# together. An import (IMPORT_MAX_CONNECTIONS) is sized like an export; both at once go over, and
# the extra requests meet 429s, which the transport retries. POST /subscribe has no fixed share
# (2 per container): outside those runs it has 4 even while a backlog drains; at the cap it
# retries briefly, then queues the signup (202, nothing lost). Raising a share trades signups
# answered at once for queued ones (docs/signup.md, "Mailchimp's 10 connections";
# tests/unit/test_signup_template.py checks the template's arithmetic). Mandrill has no such limit.
MAILCHIMP_CONNECTIONS_PER_ACCOUNT = 10


class HttpSettings(EnvModel):
    """Timeouts and retry budget for calls to Mailchimp and Mandrill.

    Request paths must answer well inside API Gateway's 29 s, so the retry budget of one call
    is short by default; queue consumers and exports raise it through their environment.
    """

    connect_timeout: float = env("MAILCHIMP_CONNECT_TIMEOUT_SECONDS", seconds, default=3.05)
    read_timeout: float = env("MAILCHIMP_READ_TIMEOUT_SECONDS", seconds, default=10.0)
    retry_budget: float = env("MAILCHIMP_RETRY_BUDGET_SECONDS", seconds, default=8.0)
    max_attempts: int = env("MAILCHIMP_MAX_ATTEMPTS", integer(ge=1, le=10), default=4)
    pool_size: int = env("MAILCHIMP_MAX_CONNECTIONS", integer(ge=1, le=10), default=10)


class TracingSettings(EnvModel):
    """Whether X-Ray tracing is on, decided as Powertools decides it: inside Lambda, unless
    POWERTOOLS_TRACE_DISABLED is set or ``sam local`` runs the function."""

    disabled: bool = env("POWERTOOLS_TRACE_DISABLED", lax_bool, default=False)
    lambda_task_root: str | None = env("LAMBDA_TASK_ROOT", default=None)
    sam_local: bool = env("AWS_SAM_LOCAL", lax_bool, default=False)

    @property
    def enabled(self) -> bool:
        return bool(self.lambda_task_root) and not (self.disabled or self.sam_local)


class MailchimpSettings(EnvModel):
    secret_arn: str = env("MAILCHIMP_SECRET_ARN")
    # Base URL override (the local sandbox); production derives it from the key's data center.
    api_url: str | None = env("MAILCHIMP_API_URL", default=None)
    # Base URL override of login.mailchimp.com (OAuth 2: authorize, token, metadata); the sandbox locally.
    login_url: str | None = env("MAILCHIMP_LOGIN_URL", text(pattern=HTTP_URL), default=None)


class MandrillSettings(EnvModel):
    secret_arn: str = env("MANDRILL_SECRET_ARN")
    api_url: str | None = env("MANDRILL_API_URL", default=None)


class ApiSettings(EnvModel):
    """Settings shared by every HTTP-facing function."""

    allowed_origins: list[str] = env("ALLOWED_ORIGINS", comma_list, default_factory=list)


# ---------------------------------------------------------------- connect (OAuth 2)
class ConnectSettings(EnvModel):
    """``/connect/mailchimp``: the OAuth app, where states and links are used up, the public URL
    the redirect URI is built on, and what a disconnect removes (docs/connect.md)."""

    oauth_secret_arn: str = env("MAILCHIMP_OAUTH_SECRET_ARN")
    state_table: str = env("STATE_TABLE")
    # The API's public base URL (stage URL or custom domain, no trailing slash): the redirect URI
    # is <it>/connect/mailchimp/callback. Unset: https://<domain the request came to>/<stage>.
    public_url: str | None = env("API_PUBLIC_URL", text(pattern=HTTP_URL), default=None)
    # How long a started authorization may take (the state and its cookie), and a connect link lives.
    state_ttl_seconds: int = env("CONNECT_STATE_TTL_SECONDS", integer(ge=60, le=3_600), default=600)
    link_ttl_seconds: int = env("CONNECT_LINK_TTL_SECONDS", integer(ge=60, le=86_400), default=900)
    # The audience webhooks a disconnect removes and the status lists (the stack's registration).
    webhook_audiences: list[str] = env("MAILCHIMP_WEBHOOK_AUDIENCES", comma_list, default_factory=list)
    webhook_secret_arn: str | None = env("MAILCHIMP_WEBHOOK_SECRET_ARN", default=None)


# ---------------------------------------------------------------- registration hook and emails
MergeLanguage = Literal["handlebars", "mailchimp"]
MAX_PAYLOAD_KEYS = 20
PAYLOAD_KEY_PATTERN = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
# Names of Kratos' request data: an allowlist naming one is a mistake, whatever the value.
NEVER_FORWARDED_KEYS = frozenset(
    {"request_cookies", "cookies", "cookie", "request_headers", "headers", "authorization", "session", "ctx"}
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EmailFlow:
    """Which email one hook (``POST /hooks/<name>``) sends: the bundle's own template files
    (``template``: ``<name>.html`` + ``<name>.txt`` in chimpbridge/templates) or a template
    stored in Mandrill (``mandrill_template``, sent with ``messages/send-template``)."""

    template: str | None = None
    mandrill_template: str | None = None
    subject: str | None = None
    merge_language: MergeLanguage = "handlebars"
    tags: list[str] = dataclasses.field(default_factory=list)
    # The transient_payload members this email may carry (logic/email_payload.py); none by default.
    payload_keys: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if (self.template is None) == (self.mandrill_template is None):
            raise ValueError("set exactly one of template (bundle files) or mandrill_template")
        if self.template is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", self.template):
            raise ValueError("template must be a file name: a-z, 0-9, _ and -")
        if self.template is not None and self.subject is None:
            raise ValueError("a bundle template needs a subject")
        for name, value in (("mandrill_template", self.mandrill_template), ("subject", self.subject)):
            if value is not None and not 1 <= len(value) <= 200:
                raise ValueError(f"{name} must be 1 to 200 characters")
        if self.merge_language not in get_args(MergeLanguage):
            raise ValueError("merge_language must be handlebars or mailchimp")
        if len(self.tags) > 5:
            raise ValueError("tags must be at most 5 names")
        if len(self.payload_keys) > MAX_PAYLOAD_KEYS:
            raise ValueError(f"payload_keys must be at most {MAX_PAYLOAD_KEYS} names")
        for key in self.payload_keys:
            if not re.fullmatch(PAYLOAD_KEY_PATTERN, key):
                raise ValueError(f"payload_keys must match {PAYLOAD_KEY_PATTERN} (a name a template can use)")
            if key.lower() in NEVER_FORWARDED_KEYS:
                raise ValueError(f"payload_keys must not name {key}: Kratos' cookies and headers never leave it")

    @classmethod
    def from_document(cls, document: Any) -> EmailFlow:
        members = json_members(document, cls, forbid_unknown=True)
        expect(members, str, "template", "mandrill_template", "subject", "merge_language")
        expect_text_list(members, "tags", "payload_keys")
        return cls(**members)


HOOK_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"


def _flows(document: Any) -> dict[str, EmailFlow]:
    if not isinstance(document, dict) or not document:
        raise ValueError("must be a JSON object with at least one hook")
    flows = {}
    for hook, flow in document.items():
        if not re.match(HOOK_NAME_PATTERN, hook):
            raise ValueError(f"hook names must match {HOOK_NAME_PATTERN}")
        try:
            flows[hook] = EmailFlow.from_document(flow)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{hook}: {exc}") from None
    return flows


def _default_flows() -> dict[str, EmailFlow]:
    """What an unset (or empty) ``EMAIL_FLOWS`` means; the template's ``EmailFlows`` parameter
    defaults to empty, so this is the one place the default is written."""
    return {"registration": EmailFlow(template="welcome", subject="Welcome to {{product_name}}")}


class EmailFlowSettings(EnvModel):
    """``EMAIL_FLOWS``: hook name -> :class:`EmailFlow`, as JSON. Read by the hook (which names
    exist) and by the sender (what to send), so both always agree."""

    flows: dict[str, EmailFlow] = env("EMAIL_FLOWS", json_value(_flows), default_factory=_default_flows)


class IdempotencySettings(EnvModel):
    """The Powertools idempotency table (key ``id``, TTL ``expiration``)."""

    table_name: str = env("IDEMPOTENCY_TABLE")


class HookSettings(EnvModel):
    """The registration hook: who may call it, where emails (and opted-in signups) are queued."""

    keys_secret_arn: str = env("HOOK_KEYS_SECRET_ARN")
    # Kratos' api_key auth sends the key in a header of the operator's choosing; basic_auth
    # always uses Authorization.
    auth_header: str = env("HOOK_AUTH_HEADER", default="Authorization")
    email_queue_url: str = env("EMAIL_QUEUE_URL")
    # Seconds a (hook, identity, flow) is remembered by the hook; the sender remembers longer.
    dedupe_seconds: int = env("HOOK_DEDUPE_SECONDS", integer(ge=60), default=86_400)
    # A boolean trait (``traits.<name>``, dotted one level deep) that also subscribes the person.
    newsletter_trait: str | None = env("NEWSLETTER_OPT_IN_TRAIT", text(max_length=100), default=None)
    signup_queue_url: str | None = env("SIGNUP_QUEUE_URL", default=None)
    list_id: str | None = env("MAILCHIMP_LIST_ID", default=None)

    def __post_init__(self) -> None:
        if self.newsletter_trait and not (self.signup_queue_url and self.list_id):
            raise ValueError("NEWSLETTER_OPT_IN_TRAIT needs SIGNUP_QUEUE_URL and MAILCHIMP_LIST_ID")


class EmailSettings(EnvModel):
    """The email sender: who the email is from, how hard it retries, how long it remembers."""

    from_email: str = env("EMAIL_FROM_ADDRESS", text(pattern=EMAIL_ADDRESS))
    from_name: str = env("EMAIL_FROM_NAME", text(max_length=100), default="")
    reply_to: str | None = env("EMAIL_REPLY_TO", text(pattern=EMAIL_ADDRESS), default=None)
    # Records of one batch sent at once (Mandrill connections: concurrency x MaximumConcurrency).
    send_concurrency: int = env("EMAIL_SEND_CONCURRENCY", integer(ge=1, le=10), default=5)
    # A failed record is retried after base * 2^(receives - 1) seconds (with jitter), at most max.
    retry_base_seconds: int = env("EMAIL_RETRY_BASE_DELAY_SECONDS", integer(ge=0, le=900), default=10)
    retry_max_seconds: int = env("EMAIL_RETRY_MAX_DELAY_SECONDS", integer(ge=0, le=43_200), default=900)
    queue_url: str | None = env("EMAIL_QUEUE_URL", default=None)
    # Where a message Mandrill refuses for good (a 4xx other than 408 and 429) goes at once.
    dead_letter_queue_url: str | None = env("EMAIL_DEAD_LETTER_QUEUE_URL", default=None)
    # How long a sent email is remembered: longer than a message can live in queue + DLQ.
    dedupe_days: int = env("EMAIL_DEDUPE_DAYS", integer(ge=1, le=365), default=30)
    # Mandrill's answer to a send was lost (read timeout): "resend" never risks a missing email,
    # "skip" never risks a second one. See docs/registration-emails.md, "Exactly once".
    on_uncertain_send: Literal["resend", "skip"] = env(
        "EMAIL_ON_UNCERTAIN_SEND", one_of("resend", "skip"), default="resend"
    )


# ---------------------------------------------------------------- newsletter signup
class SignupSettings(EnvModel):
    """``POST /subscribe``: which audience, how people join it, and what a form may set."""

    list_id: str = env("MAILCHIMP_LIST_ID")
    queue_url: str = env("SIGNUP_QUEUE_URL")
    # Double opt-in (the default) adds new people as "pending" until they confirm by email.
    double_opt_in: bool = env("SIGNUP_DOUBLE_OPT_IN", lax_bool, default=True)
    field_map: SignupFieldMap = env(
        "SIGNUP_FIELD_MAP", json_value(SignupFieldMap.from_document), default_factory=SignupFieldMap
    )
    form_secret_arn: str | None = env("SIGNUP_FORM_SECRET_ARN", default=None)
    success_redirect_url: str | None = env("SIGNUP_SUCCESS_REDIRECT_URL", text(pattern=HTTP_URL), default=None)
    error_redirect_url: str | None = env("SIGNUP_ERROR_REDIRECT_URL", text(pattern=HTTP_URL), default=None)
    # The audience's hosted signup form: where a "forgotten" address must re-subscribe itself.
    hosted_form_url: str | None = env("SIGNUP_HOSTED_FORM_URL", text(pattern=HTTP_URL), default=None)
    max_body_bytes: int = env("SIGNUP_MAX_BODY_BYTES", integer(ge=1_024, le=1_048_576), default=16_384)
    # A form is anonymous: it adds people and tags but leaves an existing member's details alone,
    # unless the site signs its users in first (logic/signup_apply.py).
    update_existing: bool = env("SIGNUP_UPDATE_EXISTING", lax_bool, default=False)
    # One answer for every accepted signup, so it never tells whether an address is on the list.
    privacy_mode: bool = env("SIGNUP_PRIVACY_MODE", lax_bool, default=False)
    # Signups (so confirmation emails) one address may trigger per day, whatever the IP; 0: no limit.
    max_per_address: int = env("SIGNUP_MAX_PER_ADDRESS_PER_DAY", integer(ge=0, le=1_000), default=0)
    state_table: str | None = env("STATE_TABLE", default=None)
    # A signup without a form token is taken for a bot's (every form fetches GET /subscribe/token).
    require_form_token: bool = env("SIGNUP_REQUIRE_FORM_TOKEN", lax_bool, default=False)

    def __post_init__(self) -> None:
        if self.max_per_address and not self.state_table:
            raise ValueError("SIGNUP_MAX_PER_ADDRESS_PER_DAY needs STATE_TABLE (where signups are counted)")

    @property
    def status_if_new(self) -> Literal["pending", "subscribed"]:
        return "pending" if self.double_opt_in else "subscribed"


class SignupWorkerSettings(EnvModel):
    """The signup worker: how many queued signups it applies at once, and how long a record that
    failed for a passing reason waits before its next try."""

    queue_url: str | None = env("SIGNUP_QUEUE_URL", default=None)
    # Where a signup Mailchimp refuses for good (a 4xx other than 408 and 429) goes at once.
    dead_letter_queue_url: str | None = env("SIGNUP_DEAD_LETTER_QUEUE_URL", default=None)
    # Records of one batch applied at once; times the event source's MaximumConcurrency this is
    # the worker's share of the connection budget (MAILCHIMP_CONNECTIONS_PER_ACCOUNT).
    concurrency: int = env("SIGNUP_WORKER_CONCURRENCY", integer(ge=1, le=10), default=3)
    retry_base_seconds: int = env("SIGNUP_RETRY_BASE_DELAY_SECONDS", integer(ge=0, le=900), default=15)
    retry_max_seconds: int = env("SIGNUP_RETRY_MAX_DELAY_SECONDS", integer(ge=0, le=43_200), default=900)


# ---------------------------------------------------------------- audience export
class ExportSettings(EnvModel):
    """The scheduled audience export: where it writes, and how hard it pulls on Mailchimp."""

    state_table: str = env("STATE_TABLE")
    bucket: str = env("EXPORT_BUCKET")
    # Pages fetched at once = connections held: the export's share of the connection budget
    # (MAILCHIMP_CONNECTIONS_PER_ACCOUNT).
    concurrency: int = env("EXPORT_CONCURRENCY", integer(ge=1, le=10), default=4)
    part_size_mib: int = env("EXPORT_PART_SIZE_MIB", integer(ge=5, le=512), default=8)
    # Stop taking new pages this long before the Lambda deadline, then checkpoint.
    stop_before_deadline_seconds: float = env("EXPORT_STOP_BEFORE_DEADLINE_SECONDS", seconds, default=60)
    # 0: as many as the invocation's time allows. A limit makes invocations short and even.
    max_pages_per_invocation: int = env("EXPORT_MAX_PAGES_PER_INVOCATION", integer(ge=0), default=0)
    # A run exports members changed before (its start - this): covers clock skew between
    # Lambda and Mailchimp, so a change stamped during the run can never fall inside the run.
    settle_seconds: int = env("EXPORT_SETTLE_SECONDS", integer(ge=0, le=3600), default=10)
    # The longest the state machine waits before calling the function again (the largest wait
    # of its Retry rules, statemachine/audience_export.asl.json). A run's lock lease runs to the
    # invocation's deadline plus this plus a margin, so it never lapses under a live run.
    max_retry_delay_seconds: int = env("EXPORT_MAX_RETRY_DELAY_SECONDS", integer(ge=0, le=3600), default=600)


# ---------------------------------------------------------------- audience import
class ImportSettings(EnvModel):
    """The audience import: the bucket it reads and reports into, how many connections it holds,
    and what a file may set."""

    state_table: str = env("STATE_TABLE")
    bucket: str = env("IMPORT_BUCKET")
    event_bus_name: str = env("EVENT_BUS_NAME")
    # Members applied at once = connections held: the import's share of the connection budget
    # (MAILCHIMP_CONNECTIONS_PER_ACCOUNT; template parameter ImportMaxConnections).
    max_connections: int = env("IMPORT_MAX_CONNECTIONS", integer(ge=1, le=10), default=4)
    # Rows whose consent column says yes join as subscribed only when this is true; else pending.
    trust_consent: bool = env("IMPORT_TRUST_CONSENT", lax_bool, default=False)
    field_map: ImportFieldMap = env(
        "IMPORT_FIELD_MAP", json_value(ImportFieldMap.from_document), default_factory=ImportFieldMap
    )
    emails_in_report: str = env("IMPORT_REPORT_EMAILS", one_of("masked", "full"), default="masked")
    # Rows applied between two checkpoints: what a run killed without warning may apply twice.
    chunk_rows: int = env("IMPORT_CHUNK_ROWS", integer(ge=1, le=10_000), default=500)
    # 0: as many rows as the invocation's time allows. A limit makes invocations short and even.
    max_rows_per_invocation: int = env("IMPORT_MAX_ROWS_PER_INVOCATION", integer(ge=0), default=0)
    # Stop taking new rows when less than this (plus twice the last chunk's time) is left before
    # the Lambda deadline, then checkpoint.
    stop_before_deadline_seconds: float = env("IMPORT_STOP_BEFORE_DEADLINE_SECONDS", seconds, default=30)
    # The longest the state machine waits before calling again (statemachine/audience_import.asl.json):
    # the lock lease outlives it, so it never lapses under a live run.
    max_retry_delay_seconds: int = env("IMPORT_MAX_RETRY_DELAY_SECONDS", integer(ge=0, le=3600), default=600)


# ---------------------------------------------------------------- Mailchimp audience webhooks
MAILCHIMP_WEBHOOK_SOURCES = ("user", "admin", "api")


def webhook_sources(raw: str) -> tuple[str, ...]:
    """Which changes Mailchimp reports: by the ``user`` (subscriber), an ``admin`` (the Mailchimp
    app) or the ``api`` (our own writes among them: listening to api would echo every signup)."""
    sources = tuple(dict.fromkeys(comma_list(raw)))
    unknown = sorted(set(sources) - set(MAILCHIMP_WEBHOOK_SOURCES))
    if unknown or not sources:
        raise ValueError("must be a comma separated list of " + ", ".join(MAILCHIMP_WEBHOOK_SOURCES))
    return sources


class MailchimpWebhookSettings(EnvModel):
    """``/webhooks/mailchimp/{token}``: who may deliver, where events go, how long a delivery is
    remembered. ``sources`` is what the webhook is (to be) registered for in Mailchimp; events
    carry it, since Mailchimp's payload does not say which source made a change."""

    secret_arn: str = env("MAILCHIMP_WEBHOOK_SECRET_ARN")
    event_bus_name: str = env("EVENT_BUS_NAME")
    sources: tuple[str, ...] = env("MAILCHIMP_WEBHOOK_SOURCES", webhook_sources, default=("user", "admin"))
    # Mailchimp retries a failed delivery for 75 minutes; a day covers that with room to spare.
    dedupe_seconds: int = env("MAILCHIMP_WEBHOOK_DEDUPE_SECONDS", integer(ge=3_600), default=86_400)
    # How far a signature's timestamp may be from our clock, either way.
    signature_tolerance_seconds: int = env("MAILCHIMP_WEBHOOK_SIGNATURE_TOLERANCE_SECONDS", integer(ge=1), default=300)
    # EventBridge takes at most 256 KiB per event: the detail of a larger delivery could not be
    # published, so it is refused with a 413 (counted as MailchimpWebhookInvalid) before any work.
    max_body_bytes: int = env("MAILCHIMP_WEBHOOK_MAX_BODY_BYTES", integer(ge=1_024, le=196_608), default=131_072)


# ---------------------------------------------------------------- Mandrill webhooks
class MandrillWebhookSettings(EnvModel):
    """``/webhooks/mandrill``: the keys that sign deliveries, the URL they sign, the queue."""

    secret_arn: str = env("MANDRILL_WEBHOOK_SECRET_ARN")
    queue_url: str = env("MANDRILL_EVENTS_QUEUE_URL")
    # The URL exactly as registered in Mandrill (it is part of what Mandrill signs). Unset:
    # <API_PUBLIC_URL>/webhooks/mandrill, else the URL the request reached API Gateway at (its
    # stage URL, or the custom domain it came through).
    webhook_url: str | None = env("MANDRILL_WEBHOOK_URL", text(pattern=HTTP_URL), default=None)
    public_url: str | None = env("API_PUBLIC_URL", text(pattern=HTTP_URL), default=None)
    # API Gateway takes 10 MB; 1,000 Mandrill events are about 2 MB.
    max_body_bytes: int = env("MANDRILL_WEBHOOK_MAX_BODY_BYTES", integer(ge=1_024, le=10_485_760), default=6_000_000)
    # One queue message holds at most this much of a delivery (SQS takes 256 KiB per message).
    max_message_bytes: int = env("MANDRILL_EVENTS_MESSAGE_BYTES", integer(ge=4_096, le=250_000), default=240_000)


class MandrillEventsSettings(EnvModel):
    """The Mandrill events worker: where events go and what it remembers, for how long."""

    state_table: str = env("STATE_TABLE")
    event_bus_name: str = env("EVENT_BUS_NAME")
    # An event processed within this many days is not processed again (Mandrill retries for hours).
    dedupe_days: int = env("MANDRILL_EVENTS_DEDUPE_DAYS", integer(ge=1, le=365), default=14)
    # How long an email's delivery record (state and history) is kept.
    record_days: int = env("EMAIL_RECORD_DAYS", integer(ge=1, le=3650), default=400)
    # DynamoDB calls of one queue message made at once.
    concurrency: int = env("MANDRILL_EVENTS_CONCURRENCY", integer(ge=1, le=32), default=8)
    queue_url: str | None = env("MANDRILL_EVENTS_QUEUE_URL", default=None)


class SuppressionSettings(EnvModel):
    """Where suppressed addresses are kept (the state table). Unset: the sender checks nothing."""

    state_table: str | None = env("STATE_TABLE", default=None)


# ---------------------------------------------------------------- custom resources
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(raw: str) -> str:
    """Never fails: a custom resource must always answer CloudFormation, and a setting that
    failed to parse before the helper exists would leave the stack waiting."""
    level = raw.upper()
    return level if level in LOG_LEVELS else "INFO"


class CustomResourceSettings(EnvModel):
    """CloudFormation custom resources (crhelper): how much the helper logs, and the CA bundle
    that verifies the response URL it PUTs the answer to (``AWS_CA_BUNDLE``, as the AWS SDKs
    read it; unset: the system's certificates, as in Lambda)."""

    log_level: str = env("POWERTOOLS_LOG_LEVEL", _log_level, default="INFO")
    ca_bundle: str | None = env("AWS_CA_BUNDLE", default=None)
