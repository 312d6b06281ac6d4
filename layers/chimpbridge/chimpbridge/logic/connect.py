"""Connecting the bundle to a Mailchimp account through OAuth 2, its status, and disconnecting
(docs/connect.md). The routes are in functions/connect/app.py.

- **Start** (``GET /connect/mailchimp?link=``): only an operator holds a connect link (signed
  with the OAuth secret's ``signing_key``, short-lived, good once: ``tools/mailchimp_connect.py``
  makes it). The browser gets a random cookie (HttpOnly, Secure, SameSite=Lax, scoped to the
  connect paths) and is sent to Mailchimp's authorize page with a ``state`` that is signed,
  short-lived and bound to that cookie.
- **Callback**: the state must be ours, unexpired, from this browser and not used before (a
  conditional write makes it single use); then the code is exchanged, the token's metadata read
  (Mailchimp may answer 200 with ``{"error": "invalid_token"}``) and only then the Mailchimp
  secret gets a new version ``{"access_token", "server_prefix", "account", ...}``. Any refusal
  leaves the secret as it was.
- **Status** and **disconnect** take a signed operator token (``Authorization: Bearer``), good
  once: no cookie authenticates them, so a cross-site request cannot trigger them. Disconnect
  removes the audience webhooks the stack registered (the registrar's own code) and replaces
  the token with the "disconnected" value; from then on signups queue, emails and exports fail
  with a clear error, until the next connect.
"""

from __future__ import annotations

import secrets as random_tokens
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from chimpbridge import mailchimp_login, settings
from chimpbridge.errors import (
    ConfigurationError,
    ConnectRefused,
    MailchimpApiError,
    MailchimpNotConnected,
    Unauthorized,
    UpstreamError,
)
from chimpbridge.logic import connect_tokens
from chimpbridge.models.checks import Checks
from chimpbridge.models.webhook_registration import WebhookRegistration
from chimpbridge.observability import count, logger
from chimpbridge.secrets import MailchimpCredentials, MailchimpOAuthApp, disconnected_document, get_secret

COOKIE_NAME = "chimpbridge_connect"
CALLBACK_PATH = "/connect/mailchimp/callback"
# Our links and states are about 200 characters, Mailchimp's codes shorter.
MAX_QUERY_VALUE_LENGTH = 1_000


@dataclass(frozen=True)
class Redirect:
    location: str
    set_cookie: str


@dataclass(frozen=True)
class Connected:
    account: str
    server_prefix: str
    clear_cookie: str


def public_base(fallback: str) -> str:
    """The API's public base URL: ``API_PUBLIC_URL``, else ``fallback`` (where the request came)."""
    return (settings.load(settings.ConnectSettings).public_url or fallback).rstrip("/")


def redirect_uri(base: str) -> str:
    return base + CALLBACK_PATH


def start(link: str | None, base: str) -> Redirect:
    """The authorize redirect for an operator's connect link; raises :class:`ConnectRefused`."""
    _check_query({"link": link})
    config = settings.load(settings.ConnectSettings)
    app = _oauth_app()
    if not app.registered:
        raise ConnectRefused(
            "not-configured",
            "The Mailchimp OAuth app is not set up yet: put its client id and secret in the OAuth secret.",
        )
    claims = connect_tokens.check(app.signing_key, link, "link")
    _use_once(claims, "used", "This connect link was used already. Make a new one.")
    browser = random_tokens.token_urlsafe(32)
    state = connect_tokens.issue(
        app.signing_key, "state", config.state_ttl_seconds, binding=connect_tokens.browser_binding(browser)
    )
    count("MailchimpConnectStarted")
    return Redirect(
        location=mailchimp_login.authorize_url(app.client_id, redirect_uri(base), state),
        set_cookie=_cookie(browser, base, config.state_ttl_seconds),
    )


def callback(query: dict[str, str], cookie: str | None, base: str) -> Connected:
    """Finish the authorization Mailchimp sent the browser back from; raises :class:`ConnectRefused`."""
    _check_query({name: query.get(name) for name in ("state", "code", "error")})
    app = _oauth_app()
    if query.get("error"):
        count("MailchimpConnectRefused")
        logger.info("Mailchimp connection not allowed", extra={"error": query["error"][:64]})
        raise ConnectRefused("denied", "Access to Mailchimp was not allowed, so nothing was changed.")
    claims = connect_tokens.check(
        app.signing_key, query.get("state"), "state", binding=connect_tokens.browser_binding(cookie or "")
    )
    _use_once(claims, "replayed", "This authorization was completed already. Start again with a new connect link.")
    code = query.get("code")
    if not code:
        raise ConnectRefused("code", "Mailchimp sent no authorization code. Start again.")
    token = mailchimp_login.exchange_code(
        code=code, client_id=app.client_id, client_secret=app.client_secret, redirect_uri=redirect_uri(base)
    )
    account = mailchimp_login.metadata(token)
    from chimpbridge.dal import connect_store  # noqa: PLC0415 - boto3 only on this path

    connect_store.put_secret(
        settings.load(settings.MailchimpSettings).secret_arn,
        {
            "access_token": token,
            "server_prefix": account.dc,
            "account": account.login_email,
            "account_id": account.account_id,
            "account_name": account.account_name,
            "connected_at": _now(),
        },
    )
    count("MailchimpConnected")
    logger.info("connected to Mailchimp", extra={"account": account.login_email, "dc": account.dc})
    return Connected(account=account.login_email, server_prefix=account.dc, clear_cookie=_cookie("", base, 0))


def check_operator(authorization: str | None, purpose: str) -> None:
    """``Authorization: Bearer <operator token>`` for ``purpose``, good once; raises Unauthorized."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    try:
        if scheme.lower() != "bearer":
            raise ConnectRefused("forged", "no bearer token")
        claims = connect_tokens.check(_oauth_app().signing_key, token.strip(), purpose)
        _use_once(claims, "replayed", "token used already")
    except ConnectRefused as refused:
        logger.warning("operator call refused", extra={"purpose": purpose, "reason": refused.kind})
        raise Unauthorized(refused.kind) from None


def status(base: str) -> dict[str, Any]:
    """Whether the bundle is connected, to which account and data center, and its audience
    webhooks. Never the token or key."""
    from chimpbridge import clients  # noqa: PLC0415
    from chimpbridge.logic import mailchimp_webhook_registration  # noqa: PLC0415

    try:
        credentials = get_secret(settings.load(settings.MailchimpSettings).secret_arn, MailchimpCredentials)
    except MailchimpNotConnected:
        return {"connected": False, "reason": "disconnected: connect again at /connect/mailchimp"}
    if credentials.is_placeholder:
        return {"connected": False, "reason": "the Mailchimp secret still holds its placeholder"}
    answer: dict[str, Any] = {
        "connected": True,
        "method": "oauth" if credentials.via_oauth else "api_key",
        "account": credentials.account,
        "dc": credentials.data_center,
        "connected_at": credentials.connected_at,
    }
    try:
        root = clients.marketing().root.get_root(fields=["account_name", "email"])
        if isinstance(root, dict):  # an API key's account is named only by Mailchimp
            answer["account"] = answer["account"] or root.get("email")
            answer["account_name"] = root.get("account_name")
        registration = _registration(base)
        answer["webhooks"] = mailchimp_webhook_registration.registered(registration) if registration else {}
    except MailchimpApiError as error:
        if error.status not in (401, 403):
            raise
        return {**answer, "connected": False, "reason": "Mailchimp refused the credentials (revoked or deleted)"}
    return answer


def disconnect(base: str) -> dict[str, Any]:
    """Remove the stack's audience webhooks, then the token; raises UpstreamError when Mailchimp
    cannot be reached (nothing is half done then: the token stays, the call can be repeated)."""
    from chimpbridge.dal import connect_store  # noqa: PLC0415
    from chimpbridge.logic import mailchimp_webhook_registration  # noqa: PLC0415

    registration = _registration(base)
    removed: list[str] = []
    if registration is not None:
        try:
            removed = mailchimp_webhook_registration.unregister(registration).deleted
        except ConfigurationError as error:  # already disconnected: nothing can be removed
            logger.warning("webhooks not removed", extra={"error": str(error)})
    secret_arn = settings.load(settings.MailchimpSettings).secret_arn
    connect_store.put_secret(secret_arn, disconnected_document(_now()), drop_previous=True)
    count("MailchimpDisconnected")
    logger.warning("disconnected from Mailchimp", extra={"webhooks_removed": len(removed)})
    return {"connected": False, "webhooks_removed": removed}


def forget_token() -> bool:
    """Uninstall (the stack's ``Custom::MailchimpConnection`` is deleted, after the audience
    webhooks): an OAuth token in the Mailchimp secret is replaced by the "disconnected" value,
    so no version of the secret keeps it through the deletion's recovery window. An API key is
    the operator's own and stays. Never raises for what cannot get better (a stack being deleted
    must not be held by it); returns whether a token was removed."""
    from chimpbridge.dal import aws_errors, connect_store  # noqa: PLC0415

    secret_arn = settings.load(settings.MailchimpSettings).secret_arn
    try:
        if not get_secret(secret_arn, MailchimpCredentials, force=True).via_oauth:
            return False
        connect_store.put_secret(secret_arn, disconnected_document(_now()), drop_previous=True)
    except MailchimpNotConnected:
        return False
    # Concatenated, not unpacked: mypy cannot type an except clause's starred tuple.
    except (ConfigurationError, UpstreamError) + aws_errors.failure_types() as error:  # noqa: RUF005
        logger.warning("the Mailchimp token was not removed", extra={"error": type(error).__name__})
        return False
    count("MailchimpDisconnected")
    logger.warning("Mailchimp token removed with the stack")
    return True


def _registration(base: str) -> WebhookRegistration | None:
    config = settings.load(settings.ConnectSettings)
    if not config.webhook_audiences:
        return None
    return WebhookRegistration(
        audiences=tuple(config.webhook_audiences),
        url_prefix=base + "/webhooks/mailchimp/",
        sources=("user", "admin"),  # the URL decides which webhooks are ours, not their sources
        token_secret_arn=config.webhook_secret_arn or "unused",
    )


def _check_query(values: dict[str, str | None]) -> None:
    """What the browser brings in the query (a link, a state, Mailchimp's code) follows the text
    rules before anything reads it: an InvalidRequest (422, per field) otherwise."""
    check = Checks()
    for name, value in values.items():
        if value is not None:
            check.value_text(name, value, MAX_QUERY_VALUE_LENGTH)
    check.raise_invalid("The link carries values that are not valid.")


def _oauth_app() -> MailchimpOAuthApp:
    return get_secret(settings.load(settings.ConnectSettings).oauth_secret_arn, MailchimpOAuthApp)


def _use_once(claims: connect_tokens.Claims, kind: str, message: str) -> None:
    from chimpbridge.dal import connect_store  # noqa: PLC0415

    if not connect_store.claim_once(
        settings.load(settings.ConnectSettings).state_table, claims.nonce, claims.expires_at
    ):
        raise ConnectRefused(kind, message)


def _cookie(value: str, base: str, max_age: int) -> str:
    path = urlsplit(base).path.rstrip("/") + "/connect/mailchimp"
    return f"{COOKIE_NAME}={value}; Max-Age={max_age}; Path={path}; HttpOnly; Secure; SameSite=Lax"


def read_cookie(header: str | None) -> str | None:
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE_NAME and value:
            return value
    return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
