"""Secrets Manager access: JSON secrets checked by a model and cached with a max age.

``get_secret(arn, Model)`` answers from a per-container cache while the value is younger than
``SECRETS_MAX_AGE_SECONDS``; ``force=True`` reads it again (the clients do that once when
Mailchimp or Mandrill answer 401, in case the key was rotated). Values are never logged.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, TypeVar

import urllib3

from chimpbridge import aws_json, credentials, settings
from chimpbridge.errors import ConfigurationError, MailchimpNotConnected, UpstreamError
from chimpbridge.models.checks import expect, expect_text_list, json_members


class SecretModel(Protocol):
    @classmethod
    def from_document(cls, document: Any) -> Self:
        """The model from the secret's JSON; raises ValueError naming members, never values."""
        ...


SecretT = TypeVar("SecretT", bound=SecretModel)

# template.yaml creates the Mailchimp secret as {"api_key": "REPLACE-ME-us1"}.
MAILCHIMP_KEY_PLACEHOLDER_PREFIX = "REPLACE-ME"


@dataclass(frozen=True, kw_only=True)
class MailchimpCredentials:
    """``{"api_key": "...-us21"}``, or after OAuth ``{"access_token", "server_prefix", "account",
    "account_id", "connected_at"}`` (logic/connect.py writes it). The server prefix of a token
    comes from the secret (Mailchimp's metadata said it), never from the token.

    After a disconnect the secret holds ``{"access_token": "", "server_prefix": "",
    "disconnected_at": ...}``: reading it raises :class:`MailchimpNotConnected`, so every caller
    fails clearly (signups are queued) until the bundle is connected again.
    """

    api_key: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    server_prefix: str | None = None
    account: str | None = None
    account_id: str | None = None
    connected_at: str | None = None

    def __post_init__(self) -> None:
        if self.access_token and self.server_prefix:
            return
        if self.api_key and "-" in self.api_key and self.api_key.rsplit("-", 1)[1]:
            return
        raise ValueError("needs api_key ending in -<dc>, or access_token with server_prefix")

    @classmethod
    def from_document(cls, document: Any) -> MailchimpCredentials:
        if isinstance(document, dict) and document.get("disconnected_at") and not document.get("access_token"):
            raise MailchimpNotConnected("the bundle is disconnected from Mailchimp: connect it again (docs/connect.md)")
        members = json_members(document, cls)
        expect(members, str, "api_key", "access_token", "server_prefix", "account", "account_id", "connected_at")
        return cls(**members)

    @property
    def is_placeholder(self) -> bool:
        """The value a stack-created secret starts with (template.yaml, MailchimpSecret) until
        the operator puts the real key in."""
        return not self.access_token and (self.api_key or "").startswith(MAILCHIMP_KEY_PLACEHOLDER_PREFIX)

    @property
    def via_oauth(self) -> bool:
        return bool(self.access_token)

    @property
    def data_center(self) -> str:
        if self.access_token and self.server_prefix:
            return self.server_prefix
        assert self.api_key is not None  # guaranteed by __post_init__
        return self.api_key.rsplit("-", 1)[1]


def disconnected_document(at: str) -> dict[str, str]:
    """What the Mailchimp secret holds after a disconnect: no token, and when it was removed."""
    return {"access_token": "", "server_prefix": "", "disconnected_at": at}


@dataclass(frozen=True, kw_only=True)
class MailchimpOAuthApp:
    """``{"client_id", "client_secret", "signing_key"}``: the OAuth app registered in Mailchimp,
    and the key that signs connect links and ``state`` (the template generates it)."""

    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    signing_key: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if len(self.signing_key) < 16:
            raise ValueError("needs signing_key of at least 16 characters")

    @classmethod
    def from_document(cls, document: Any) -> MailchimpOAuthApp:
        members = json_members(document, cls)
        expect(members, str, "client_id", "client_secret", "signing_key")
        return cls(**members)

    @property
    def registered(self) -> bool:
        """Whether the operator put the app's client id and secret in (not the placeholders)."""
        placeholder = MAILCHIMP_KEY_PLACEHOLDER_PREFIX
        return bool(self.client_id and self.client_secret) and not self.client_id.startswith(placeholder)


@dataclass(frozen=True, kw_only=True)
class MandrillCredentials:
    api_key: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("needs api_key")

    @classmethod
    def from_document(cls, document: Any) -> MandrillCredentials:
        members = json_members(document, cls)
        expect(members, str, "api_key")
        return cls(api_key=members.get("api_key", ""))


@dataclass(frozen=True, kw_only=True)
class HookKeys:
    """Keys accepted from Ory Kratos; two at once while one is being rotated out.

    ``initial_key`` is the random key the template generates at deploy, so the hook is never
    open or guarded by a placeholder; ``registration_hook_keys`` is what operators manage.
    """

    registration_hook_keys: list[str] = field(default_factory=list, repr=False)
    initial_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.accepted_keys:
            raise ValueError("needs at least one non-empty key in registration_hook_keys")

    @classmethod
    def from_document(cls, document: Any) -> HookKeys:
        members = json_members(document, cls)
        expect_text_list(members, "registration_hook_keys")
        expect(members, str, "initial_key")
        return cls(**members)

    @property
    def accepted_keys(self) -> list[str]:
        keys = [key for key in self.registration_hook_keys if key]
        return keys + ([self.initial_key] if self.initial_key else [])


@dataclass(frozen=True, kw_only=True)
class WebhookSecret:
    """What authenticates Mailchimp's audience webhook deliveries.

    ``webhook_tokens``: the secret part of the webhook URL; two at once while one is rotated out.
    ``initial_token`` is the random one the template generates, so the URL is never guarded by a
    placeholder. ``signing_key``: when set, every delivery must carry a valid
    ``X-Mailchimp-Signature`` made with it (webhooks created with signing).
    """

    webhook_tokens: list[str] = field(default_factory=list, repr=False)
    initial_token: str | None = field(default=None, repr=False)
    signing_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.accepted_tokens:
            raise ValueError("needs at least one non-empty token in webhook_tokens")

    @classmethod
    def from_document(cls, document: Any) -> WebhookSecret:
        members = json_members(document, cls)
        expect_text_list(members, "webhook_tokens")
        expect(members, str, "initial_token", "signing_key")
        return cls(**members)

    @property
    def accepted_tokens(self) -> list[str]:
        tokens = [token for token in self.webhook_tokens if token]
        return tokens + ([self.initial_token] if self.initial_token else [])


@dataclass(frozen=True, kw_only=True)
class MandrillWebhookKeys:
    """The keys Mandrill signs webhook deliveries with: ``{"webhook_keys": ["current", "previous"]}``.

    Mandrill generates a webhook's key when the webhook is added; the stack's registration
    writes it here. Empty until then: only Mandrill's test delivery (signed with its generic
    key) is accepted. Two keys are accepted while one is rotated out.
    """

    webhook_keys: list[str] = field(default_factory=list, repr=False)

    @classmethod
    def from_document(cls, document: Any) -> MandrillWebhookKeys:
        members = json_members(document, cls)
        expect_text_list(members, "webhook_keys")
        return cls(**members)

    @property
    def accepted_keys(self) -> list[str]:
        return [key for key in self.webhook_keys if key]


_cache: dict[str, tuple[float, str]] = {}
_cache_lock = threading.Lock()
_http: urllib3.PoolManager | None = None


def get_secret(arn: str, model: type[SecretT], *, force: bool = False) -> SecretT:
    """The secret ``arn`` parsed as ``model``; cached unless older than the max age or forced."""
    max_age = settings.load(settings.SecretsSettings).max_age_seconds
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(arn)
    if force or cached is None or now - cached[0] >= max_age:
        raw = _fetch_secret_string(arn)
        with _cache_lock:
            _cache[arn] = (now, raw)
    else:
        raw = cached[1]
    try:
        return model.from_document(json.loads(raw))
    except ValueError as exc:  # the message names fields, never values
        raise ConfigurationError(f"secret {arn} is not a valid {model.__name__} ({exc})") from None


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def reset() -> None:
    """Forget cached values and connections: what a SnapStart snapshot carried is neither
    fresh (the monotonic clock says nothing of the time the snapshot lay cached) nor connected."""
    global _http  # noqa: PLW0603
    clear_cache()
    if _http is not None:
        _http.clear()
    _http = None
    credentials.forget()


SECRETS_MANAGER = aws_json.JsonApi(
    service="secretsmanager",
    connect_timeout=2.0,
    read_timeout=5.0,
    min_budget=0.5,
    backoff=0.1,
    throttled=frozenset({"ThrottlingException", "InternalServiceError"}),
    unnamed_error="server error",
)


def secrets_manager_url(aws: settings.AwsSettings) -> str:
    """The Secrets Manager endpoint: an override (local stack), else the region's."""
    return aws.secrets_endpoint_url or aws.endpoint_url or aws_json.regional_url("secretsmanager", aws.region)


def _fetch_secret_string(arn: str) -> str:
    """One signed GetSecretValue (aws_json.py: retried, and never past the invocation deadline)."""
    aws = settings.load(settings.AwsSettings)
    keys = credentials.current(aws)
    if keys is None:
        return _fetch_with_boto3(arn)
    global _http  # noqa: PLW0603
    if _http is None:
        _http = urllib3.PoolManager(num_pools=2, maxsize=2)
    answer = aws_json.call(
        _http,
        SECRETS_MANAGER,
        url=secrets_manager_url(aws),
        region=aws.region,
        target="secretsmanager.GetSecretValue",
        body=json.dumps({"SecretId": arn}).encode(),
        keys=keys,
    )
    if answer.status == 200 and isinstance(answer.payload.get("SecretString"), str):
        return str(answer.payload["SecretString"])
    raise ConfigurationError(f"secret {arn} cannot be read: {answer.error_type or answer.status}")


def _fetch_with_boto3(arn: str) -> str:
    """Outside Lambda, without credentials in the environment: the full credential chain."""
    import boto3  # noqa: PLC0415 - only on this rare path: see sigv4.py
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=arn)
    except ClientError as exc:
        raise ConfigurationError(f"secret {arn} cannot be read: {exc.response['Error']['Code']}") from None
    except BotoCoreError as exc:
        raise UpstreamError("secretsmanager", None, type(exc).__name__) from None
    return str(value["SecretString"])
