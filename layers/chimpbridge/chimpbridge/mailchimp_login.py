"""login.mailchimp.com, the OAuth 2 side of Mailchimp: exchange an authorization code for a
token (``POST /oauth2/token``, form-encoded) and read what the token belongs to
(``GET /oauth2/metadata``). ``MAILCHIMP_LOGIN_URL`` overrides the base URL (the sandbox locally).

The official SDK has no calls for these; they go through the same pooled, time-bounded
transport as the SDK's calls. A POST is never repeated after it may have reached Mailchimp
(a code is good once), only after a 408, a 429 or a connection that never opened.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from chimpbridge import settings
from chimpbridge.errors import ConnectRefused, UpstreamError, is_transient_status
from chimpbridge.observability import logger
from chimpbridge.transport import RetryingTransport

LOGIN_DEFAULT_URL = "https://login.mailchimp.com"


@dataclass(frozen=True)
class LoginMetadata:
    """Who the token belongs to: the data center (server prefix) and the account's login."""

    dc: str
    api_endpoint: str
    login_email: str
    account_name: str
    account_id: str


def login_url() -> str:
    return (settings.load(settings.MailchimpSettings).login_url or LOGIN_DEFAULT_URL).rstrip("/")


def authorize_url(client_id: str, redirect_uri: str, state: str) -> str:
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state})
    return f"{login_url()}/oauth2/authorize?{query}"


@functools.cache
def _transport() -> RetryingTransport:
    from chimpbridge.clients import build_transport  # noqa: PLC0415 - the SDKs only when connecting

    return build_transport("mailchimp-login", pool_size=1)


def exchange_code(*, code: str, client_id: str, client_secret: str, redirect_uri: str) -> str:
    """The access token for ``code``; raises :class:`ConnectRefused` when Mailchimp refuses."""
    form = {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "client_secret": client_secret,
        "redirect_uri": redirect_uri,
        "code": code,
    }
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    response = _send("POST", "/oauth2/token", data=urlencode(form), headers=headers)
    body = _json(response)
    token = body.get("access_token")
    if response.status_code == 200 and isinstance(token, str) and token:
        return token
    error = str(body.get("error") or f"HTTP {response.status_code}")
    logger.warning("Mailchimp refused the code exchange", extra={"status": response.status_code, "error": error})
    if error == "invalid_client":
        raise ConnectRefused("client", "Mailchimp refused this app's client id or secret. Check the OAuth secret.")
    if is_transient_status(response.status_code):
        raise ConnectRefused("unavailable", "Mailchimp could not complete the connection just now. Please try again.")
    raise ConnectRefused(
        "code", "Mailchimp would not accept this authorization (it was used already or has expired). Start again."
    )


def metadata(token: str) -> LoginMetadata:
    """What ``token`` belongs to. Mailchimp answers 200 with ``{"error": "invalid_token"}`` for a
    token it does not know, so the body is checked, not only the status."""
    response = _send(
        "GET", "/oauth2/metadata", headers={"Authorization": f"OAuth {token}", "Accept": "application/json"}
    )
    body = _json(response)
    dc = body.get("dc")
    if response.status_code != 200 or body.get("error") or not isinstance(dc, str) or not dc:
        logger.warning(
            "Mailchimp's metadata refused the new token",
            extra={"status": response.status_code, "error": str(body.get("error") or "no dc")},
        )
        raise ConnectRefused("token", "Mailchimp did not recognise the new connection. Please start again.")
    login = body.get("login") if isinstance(body.get("login"), dict) else {}
    assert isinstance(login, dict)
    return LoginMetadata(
        dc=dc,
        api_endpoint=str(body.get("api_endpoint") or ""),
        login_email=str(login.get("login_email") or login.get("email") or ""),
        account_name=str(body.get("accountname") or ""),
        account_id=str(body.get("user_id") or ""),
    )


def _send(method: str, path: str, **kwargs: Any) -> requests.Response:
    try:
        return _transport().request(method, login_url() + path, **kwargs)
    except requests.RequestException as exc:
        logger.warning("login.mailchimp.com did not answer", extra={"path": path, "error": type(exc).__name__})
        raise UpstreamError("mailchimp-login", None, type(exc).__name__) from None


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def clear() -> None:
    _transport.cache_clear()
