"""The login.mailchimp.com side of Mailchimp's OAuth 2: the authorization-code flow, as an
integration meets it (docs/sandbox.md, "OAuth 2").

- ``GET /oauth2/authorize?response_type=code&client_id=..&redirect_uri=..&state=..``: a page
  with Allow and Deny buttons. An unknown client id, or a redirect URI other than the app's
  registered one, ends on an error page there (the browser is never sent to an unregistered
  URI). Allow sends the browser to the redirect URI with ``code`` and ``state``; Deny with
  ``error=access_denied`` and ``state``.
- ``POST /oauth2/token`` (form: grant_type, client_id, client_secret, redirect_uri, code):
  ``{"access_token", "expires_in": 0, "scope": null}``. A code is good once, for
  ``code_ttl_seconds``, for the client and redirect URI it was issued to; the client secret
  is checked. Errors are RFC 6749 JSON (``invalid_client`` 401, ``invalid_grant`` 400...).
- ``GET /oauth2/metadata`` with ``Authorization: OAuth <token>``: ``dc``, ``api_endpoint``,
  ``login``...; an unknown or revoked token answers **200** ``{"error": "invalid_token"}``,
  as Mailchimp does.

Issued tokens never expire; the Marketing API accepts them (``Authorization: OAuth`` or
``Bearer``) until they are revoked through the control API (``/_sandbox/oauth/...``).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sandbox.mailchimp.constants import (
    OAUTH_ACCOUNT_EMAIL,
    OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
    OAUTH_REDIRECT_URI,
    OAUTH_SERVER_PREFIX,
)
from sandbox.mailchimp.http_types import HTML_CONTENT_TYPE, Request, Response, json_response, parse_json_body

DEFAULT_CODE_TTL_SECONDS = 30.0
CONTROL_PREFIX = "/_sandbox/oauth"


@dataclass
class OAuthApp:
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    name: str = "Sandbox integration"

    def document(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "redirect_uri": self.redirect_uri, "name": self.name}


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    expires_at: float
    used: bool = False


@dataclass
class IssuedToken:
    access_token: str
    client_id: str
    issued_at: float
    revoked: bool = False

    def document(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "client_id": self.client_id,
            "issued_at": int(self.issued_at),
            "revoked": self.revoked,
        }


def _default_app() -> OAuthApp:
    return OAuthApp(OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, OAUTH_REDIRECT_URI)


class OAuthServer:
    """Apps, codes and tokens. ``accepted_tokens`` is the Marketing API's set of OAuth tokens
        (``SandboxState.keys["oauth"]``, read at each use since a reset or PUT /_sandbox/keys replaces
    it): issuing adds to it, revoking removes from it."""

    def __init__(self, base_url: str, accepted_tokens: Callable[[], set[str]]) -> None:
        self.base_url = base_url
        self._accepted_tokens = accepted_tokens
        self.lock = threading.Lock()
        self.apps: dict[str, OAuthApp] = {}
        self.codes: dict[str, _Code] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.code_ttl_seconds = DEFAULT_CODE_TTL_SECONDS
        self.reset()

    @property
    def _accepted(self) -> set[str]:
        return self._accepted_tokens()

    def reset(self) -> None:
        with self.lock:
            self.apps = {OAUTH_CLIENT_ID: _default_app()}
            self.codes.clear()
            self.tokens.clear()
            self.code_ttl_seconds = DEFAULT_CODE_TTL_SECONDS

    # -- login.mailchimp.com ---------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        route = (request.method, request.path.rstrip("/"))
        if route == ("GET", "/oauth2/authorize"):
            return self._authorize_page(request)
        if route == ("POST", "/oauth2/authorize"):
            return self._decide(request)
        if route == ("POST", "/oauth2/token"):
            return self._token(request)
        if route == ("GET", "/oauth2/metadata"):
            return self._metadata(request)
        return json_response({"error": "not_found", "error_description": f"nothing at {request.path}"}, 404)

    def _checked_app(self, client_id: str, redirect_uri: str) -> OAuthApp | Response:
        app = self.apps.get(client_id)
        if app is None:
            return _page(400, "Invalid client", "The client_id does not belong to any registered app.")
        if redirect_uri != app.redirect_uri:
            return _page(400, "Invalid redirect URI", "The redirect_uri does not match the app's registered URI.")
        return app

    def _authorize_page(self, request: Request) -> Response:
        query = request.query
        with self.lock:
            checked = self._checked_app(query.get("client_id", ""), query.get("redirect_uri", ""))
        if isinstance(checked, Response):
            return checked
        if query.get("response_type") != "code":
            return _redirect(checked.redirect_uri, {"error": "unsupported_response_type", "state": query.get("state")})
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{escape(query.get(name, ""))}">'
            for name in ("client_id", "redirect_uri", "state")
        )
        body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize {escape(checked.name)} - Mailchimp Sandbox</title></head>
<body>
<h1>Authorize {escape(checked.name)}</h1>
<p data-testid="oauth-request">{escape(checked.name)} would like to access the Mailchimp account
<strong>{escape(OAUTH_ACCOUNT_EMAIL)}</strong> (sandbox).</p>
<form method="post" action="/oauth2/authorize">{hidden}
<button type="submit" name="decision" value="allow" data-testid="oauth-allow">Allow</button>
<button type="submit" name="decision" value="deny" data-testid="oauth-deny">Deny</button>
</form></body></html>"""
        return Response(status=200, body=body.encode(), content_type=HTML_CONTENT_TYPE)

    def _decide(self, request: Request) -> Response:
        form = _form(request)
        with self.lock:
            checked = self._checked_app(form.get("client_id", ""), form.get("redirect_uri", ""))
            if isinstance(checked, Response):
                return checked
            state = form.get("state")
            if form.get("decision") != "allow":
                return _redirect(checked.redirect_uri, {"error": "access_denied", "state": state})
            code = secrets.token_hex(16)
            self.codes[code] = _Code(checked.client_id, checked.redirect_uri, time.monotonic() + self.code_ttl_seconds)
        return _redirect(checked.redirect_uri, {"code": code, "state": state})

    def _token(self, request: Request) -> Response:
        form = _form(request)
        with self.lock:
            app = self.apps.get(form.get("client_id", ""))
            if app is None or not hmac.compare_digest(form.get("client_secret", ""), app.client_secret):
                return _oauth_error(401, "invalid_client", "Invalid client credentials")
            if form.get("grant_type") != "authorization_code":
                return _oauth_error(400, "unsupported_grant_type", "Only authorization_code is supported")
            code = self.codes.get(form.get("code", ""))
            if code is None or code.used or time.monotonic() >= code.expires_at or code.client_id != app.client_id:
                if code is not None:
                    code.used = True
                return _oauth_error(400, "invalid_grant", "Invalid authorization code")
            if form.get("redirect_uri") != code.redirect_uri:
                return _oauth_error(400, "invalid_grant", "redirect_uri does not match the authorization request")
            code.used = True
            token = secrets.token_hex(16)
            self.tokens[token] = IssuedToken(token, app.client_id, time.time())
            self._accepted.add(token)
        return json_response({"access_token": token, "expires_in": 0, "scope": None})

    def token_valid(self, token: str) -> bool:
        with self.lock:
            return token in self._accepted

    def _metadata(self, request: Request) -> Response:
        scheme, _, token = request.header("Authorization").strip().partition(" ")
        if scheme.lower() not in ("oauth", "bearer") or not self.token_valid(token.strip()):
            return json_response({"error": "invalid_token"})
        return json_response(
            {
                "dc": OAUTH_SERVER_PREFIX,
                "role": "owner",
                "accountname": "Mailchimp Sandbox",
                "user_id": 1001,
                "login": {
                    "email": OAUTH_ACCOUNT_EMAIL,
                    "avatar": None,
                    "login_id": 1001,
                    "login_name": "sandbox-owner",
                    "login_email": OAUTH_ACCOUNT_EMAIL,
                },
                "login_url": f"{self.base_url}/oauth2",
                "api_endpoint": self.base_url,
            }
        )

    # -- control API -----------------------------------------------------------------------
    def control(self, request: Request) -> Response:
        route = (request.method, request.path[len(CONTROL_PREFIX) :].rstrip("/"))
        try:
            body = parse_json_body(request.body) if request.method in ("POST", "PUT") else {}
        except ValueError as error:
            return json_response({"error": f"body is not JSON: {error}"}, 400)
        if not isinstance(body, dict):
            return json_response({"error": "body must be a JSON object"}, 400)
        with self.lock:
            if route == ("GET", "/apps"):
                return json_response([app.document() for app in self.apps.values()])
            if route == ("POST", "/apps"):
                return self._register(body)
            if route == ("GET", "/tokens"):
                return json_response([token.document() for token in self.tokens.values()])
            if route == ("POST", "/revoke"):
                return self._revoke(body)
            if route == ("PUT", "/settings"):
                ttl = body.get("code_ttl_seconds")
                if not isinstance(ttl, int | float) or isinstance(ttl, bool) or ttl <= 0:
                    return json_response({"error": "code_ttl_seconds must be a positive number"}, 400)
                self.code_ttl_seconds = float(ttl)
                return json_response({"code_ttl_seconds": self.code_ttl_seconds})
        return json_response({"error": f"no control call {request.method} {request.path}"}, 404)

    def _register(self, body: dict[str, Any]) -> Response:
        """``{"client_id", "client_secret", "redirect_uri", "name"}``: add or replace an app."""
        values = {name: body.get(name) for name in ("client_id", "client_secret", "redirect_uri")}
        if not all(isinstance(value, str) and value for value in values.values()):
            return json_response({"error": "client_id, client_secret and redirect_uri must be non-empty text"}, 400)
        if urlsplit(str(values["redirect_uri"])).scheme not in ("http", "https"):
            return json_response({"error": "redirect_uri must be an http(s) URL"}, 400)
        app = OAuthApp(**{name: str(value) for name, value in values.items()})
        if isinstance(body.get("name"), str) and body["name"]:
            app.name = body["name"]
        self.apps[app.client_id] = app
        return json_response(app.document())

    def _revoke(self, body: dict[str, Any]) -> Response:
        """``{"access_token": ".."}`` revokes one token, ``{"client_id": ".."}`` every token of an app."""
        token, client_id = body.get("access_token"), body.get("client_id")
        if not (isinstance(token, str) and token) and not (isinstance(client_id, str) and client_id):
            return json_response({"error": "give access_token or client_id"}, 400)
        revoked = []
        for issued in self.tokens.values():
            if issued.access_token == token or issued.client_id == client_id:
                issued.revoked = True
                revoked.append(issued.access_token)
        if isinstance(token, str) and token in self._accepted:
            revoked.append(token)
        for value in revoked:
            self._accepted.discard(value)
        return json_response({"revoked": len(set(revoked))})


def _form(request: Request) -> dict[str, str]:
    try:
        return dict(parse_qsl(request.body.decode(), keep_blank_values=True))
    except UnicodeDecodeError:
        return {}


def _redirect(uri: str, params: dict[str, str | None]) -> Response:
    parts = urlsplit(uri)
    extra = urlencode({name: value for name, value in params.items() if value is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    location = urlunsplit(parts._replace(query=query))
    return Response(status=302, body=b"", content_type="", headers=[("Location", location)])


def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, status)


def _page(status: int, title: str, message: str) -> Response:
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} - Mailchimp Sandbox</title></head>
<body><h1 data-testid="oauth-error">{escape(title)}</h1><p>{escape(message)}</p></body></html>"""
    return Response(status=status, body=body.encode(), content_type=HTML_CONTENT_TYPE)
