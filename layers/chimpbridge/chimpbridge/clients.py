"""Mailchimp Marketing and Transactional clients: the official SDKs, made production-grade.

Each client is the SDK's own ``Client`` whose ``ApiClient`` is replaced by a subclass that
sends through a pooled :class:`~chimpbridge.transport.RetryingTransport` and turns every
failure into :class:`~chimpbridge.errors.MailchimpApiError` or
:class:`~chimpbridge.errors.MandrillApiError`. On a 401 the secret is read again once, in case
the key was rotated, before the error is raised. Clients are built lazily, once per container.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import mailchimp_marketing
import mailchimp_transactional
import requests
from mailchimp_marketing.api_client import ApiClient as MarketingApiClient
from mailchimp_marketing.api_client import ApiClientError as MarketingApiClientError
from mailchimp_transactional.api_client import ApiClient as TransactionalApiClient
from mailchimp_transactional.api_client import ApiClientError as TransactionalApiClientError

from chimpbridge import settings
from chimpbridge.errors import MailchimpApiError, MailchimpNotConnected, MandrillApiError
from chimpbridge.observability import count, logger
from chimpbridge.secrets import MailchimpCredentials, MandrillCredentials, get_secret
from chimpbridge.transport import RetryingTransport, RetryPolicy, may_have_reached_server

MANDRILL_DEFAULT_URL = "https://mandrillapp.com/api/1.3"
USER_AGENT = "chimpbridge/0.1"

CredentialsT = TypeVar("CredentialsT")
CredentialsProvider = Callable[[bool], CredentialsT]  # force_refresh -> credentials


def marketing_base_url(credentials: MailchimpCredentials, override: str | None) -> str:
    """``https://<dc>.api.mailchimp.com/3.0``, unless a base URL override is configured."""
    return (override or f"https://{credentials.data_center}.api.mailchimp.com/3.0").rstrip("/")


def _log_retry(service: str) -> Callable[[str, int | None], None]:
    def on_retry(url: str, status: int | None) -> None:
        # The whole path, so the log's masking sees "members/<hash>" and drops the hash.
        path = url.split("?", 1)[0].split("://", 1)[-1].partition("/")[2]
        logger.warning("retrying upstream call", extra={"service": service, "path": "/" + path, "status": status})

    return on_retry


def build_transport(service: str, *, pool_size: int | None = None) -> RetryingTransport:
    http = settings.load(settings.HttpSettings)
    return RetryingTransport(
        pool_size=pool_size or http.pool_size,
        connect_timeout=http.connect_timeout,
        read_timeout=http.read_timeout,
        policy=RetryPolicy(max_attempts=http.max_attempts, budget_seconds=http.retry_budget),
        user_agent=USER_AGENT,
        on_retry=_log_retry(service),
    )


def _parse_body(text: Any) -> dict[str, Any]:
    """The SDKs hand back a dict for ``application/json`` and a string otherwise; Mailchimp
    answers ``application/problem+json``, so in production the problem arrives as a string."""
    if isinstance(text, dict):
        return text
    if isinstance(text, str | bytes):
        try:
            parsed = json.loads(text)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _answer_lost(failure: Any) -> bool:
    return isinstance(failure, requests.RequestException) and may_have_reached_server(failure)


def marketing_error(status: int | None, text: Any) -> MailchimpApiError:
    if status is None:  # the SDK wraps a transport failure: ``text`` is the exception
        return MailchimpApiError("mailchimp", None, type(text).__name__, answer_lost=_answer_lost(text))
    body = _parse_body(text)
    title = str(body.get("title") or "")
    detail = str(body.get("detail") or "")
    errors = body.get("errors")
    return MailchimpApiError(
        "mailchimp",
        status,
        title or f"HTTP {status}",
        title=title,
        detail=detail,
        type=str(body.get("type") or ""),
        instance=str(body.get("instance") or ""),
        errors=errors if isinstance(errors, list) else [],
    )


def mandrill_error(status: int | None, text: Any) -> MandrillApiError:
    if status is None:
        return MandrillApiError("mandrill", None, type(text).__name__, answer_lost=_answer_lost(text))
    body = _parse_body(text)
    name = str(body.get("name") or "")
    code = body.get("code")
    return MandrillApiError(
        "mandrill",
        status,
        name or f"HTTP {status}",
        name=name,
        message=str(body.get("message") or ""),
        code=code if isinstance(code, int) else None,
    )


class PooledMarketingApiClient(MarketingApiClient):  # type: ignore[misc]
    """The Marketing SDK's ApiClient, sending through our transport."""

    def __init__(
        self, transport: RetryingTransport, credentials: CredentialsProvider[MailchimpCredentials], api_url: str | None
    ) -> None:
        super().__init__({})
        self.transport = transport
        self._credentials = credentials
        self._api_url = api_url
        self._apply(credentials(False))

    def _apply(self, creds: MailchimpCredentials) -> None:
        self.host = marketing_base_url(creds, self._api_url)
        # An empty server stops the SDK from rewriting "server" inside our host.
        self.server = ""
        self.api_key = creds.api_key or ""
        self.access_token = creds.access_token or ""
        self.is_basic_auth = bool(self.api_key) and not self.access_token
        self.is_oauth = bool(self.access_token)

    def request(
        self,
        method: str,
        url: str,
        query_params: Any = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> requests.Response:
        headers = dict(headers or {})
        auth = ("user", self.api_key) if self.is_basic_auth else None
        if self.is_oauth:
            # Mailchimp's OAuth guide writes "OAuth <token>"; the SDK itself would send Bearer.
            headers["Authorization"] = "OAuth " + self.access_token
        data = json.dumps(body) if method in {"POST", "PUT", "PATCH"} else None
        return self.transport.request(method, url, params=query_params, data=data, headers=headers, auth=auth)

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        # The secret as cached (read again after its max age): a disconnect or a new connection
        # reaches warm containers within that age, not only after a 401.
        current = self._credentials(False)
        if (current.api_key, current.access_token) != (self.api_key or None, self.access_token or None):
            self._apply(current)
        try:
            return self._call_checked(*args, **kwargs)
        except MailchimpApiError as error:
            if error.status != 401:
                raise
            fresh = self._credentials(True)
            if (fresh.api_key, fresh.access_token) == (self.api_key or None, self.access_token or None):
                _report_refused_credentials(via_oauth=self.is_oauth)
                raise
            logger.info("Mailchimp credentials changed; retrying once with the new secret")
            self._apply(fresh)
            return self._call_checked(*args, **kwargs)

    def _call_checked(self, *args: Any, **kwargs: Any) -> Any:
        try:
            result = super().call_api(*args, **kwargs)
        except MarketingApiClientError as exc:
            raise marketing_error(exc.status_code, exc.text) from None
        # The SDK returns the bare response when an error has no body: still an error.
        if isinstance(result, requests.Response) and not result.ok:
            raise marketing_error(result.status_code, result.text)
        return result


def _report_refused_credentials(*, via_oauth: bool) -> None:
    """Mailchimp answered 401 to the secret's current credentials: a revoked token (the account
    owner disconnected the app in Mailchimp) or a deleted key. Nothing retries this away; the
    MailchimpNotConnected alarm calls the operator, who connects again (docs/connect.md)."""
    how = "OAuth token revoked" if via_oauth else "API key refused"
    logger.error("Mailchimp refused the credentials: the bundle is not connected", extra={"reason": how})
    count("MailchimpNotConnected")


def _not_connected() -> None:
    logger.error("Mailchimp is disconnected (the secret holds no token): connect again at /connect/mailchimp")
    count("MailchimpNotConnected")


class PooledTransactionalApiClient(TransactionalApiClient):  # type: ignore[misc]
    """The Transactional SDK's ApiClient, sending through our transport."""

    def __init__(self, transport: RetryingTransport, base_url: str, refresh_key: Callable[[], str | None]) -> None:
        super().__init__()
        self.transport = transport
        self.host = base_url.rstrip("/")
        self._refresh_key = refresh_key

    def request(
        self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: Any = None
    ) -> requests.Response:
        return self.transport.request(method, url, data=json.dumps(body), headers=headers)

    def call_api(self, resource_path: str, method: str, header_params: Any = None, body: Any = None, **kw: Any) -> Any:
        try:
            return self._call_checked(resource_path, method, header_params, body)
        except MandrillApiError as error:
            if error.status != 401 or not isinstance(body, dict):
                raise
            fresh = self._refresh_key()
            if fresh is None or fresh == body.get("key"):
                raise
            logger.info("Mandrill key changed; retrying once with the new secret")
            return self._call_checked(resource_path, method, header_params, {**body, "key": fresh})

    def _call_checked(self, resource_path: str, method: str, header_params: Any, body: Any) -> Any:
        try:
            result = super().call_api(resource_path, method, header_params=header_params, body=dict(body or {}))
        except TransactionalApiClientError as exc:
            raise mandrill_error(exc.status_code, exc.text) from None
        except requests.RequestException as exc:
            raise mandrill_error(None, exc) from None
        if isinstance(result, requests.Response) and not result.ok:
            raise mandrill_error(result.status_code, result.text)
        return result


ApiT = TypeVar("ApiT")


def _rebind(client: ApiT, api_client: object) -> ApiT:
    """Point every API group of an SDK ``Client`` (lists, messages, ...) at ``api_client``."""
    client.api_client = api_client  # type: ignore[attr-defined]
    for group in vars(client).values():
        if hasattr(group, "api_client"):
            group.api_client = api_client
    return client


@functools.cache
def marketing(max_connections: int | None = None) -> mailchimp_marketing.Client:
    """The Marketing API client for this container (official SDK, pooled, retrying).

    ``max_connections`` gives a client its own pool of that size (the export's page workers);
    without it the pool is ``MAILCHIMP_MAX_CONNECTIONS``.
    """
    config = settings.load(settings.MailchimpSettings)

    def credentials(force: bool) -> MailchimpCredentials:
        try:
            return get_secret(config.secret_arn, MailchimpCredentials, force=force)
        except MailchimpNotConnected:
            if force:
                _not_connected()
                raise
        # A cached "disconnected" may be stale: the operator may have connected since.
        try:
            return get_secret(config.secret_arn, MailchimpCredentials, force=True)
        except MailchimpNotConnected:
            _not_connected()
            raise

    transport = build_transport("mailchimp", pool_size=max_connections)
    api_client = PooledMarketingApiClient(transport, credentials, config.api_url)
    return _rebind(mailchimp_marketing.Client(), api_client)


@functools.cache
def transactional() -> mailchimp_transactional.Client:
    """The Transactional (Mandrill) client for this container (official SDK, pooled, retrying)."""
    config = settings.load(settings.MandrillSettings)
    client = mailchimp_transactional.Client(get_secret(config.secret_arn, MandrillCredentials).api_key)

    def refresh_key() -> str | None:
        key = get_secret(config.secret_arn, MandrillCredentials, force=True).api_key
        client.set_api_key(key)  # later calls carry the new key in their bodies
        return key

    api_client = PooledTransactionalApiClient(
        build_transport("mandrill"), config.api_url or MANDRILL_DEFAULT_URL, refresh_key
    )
    return _rebind(client, api_client)


def clear() -> None:
    """Forget the cached clients (tests that change settings or secrets call this)."""
    marketing.cache_clear()
    transactional.cache_clear()
