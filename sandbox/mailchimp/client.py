"""A small client of the sandbox's control API, plus official SDK clients pointed at it.
Used by the pytest fixtures, the benchmarks and the local stack."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import mailchimp_marketing
import mailchimp_transactional
import requests

from sandbox.mailchimp.constants import (
    DEFAULT_LIST_ID,
    MARKETING_API_KEY,
    OAUTH_SERVER_PREFIX,
    TRANSACTIONAL_API_KEY,
)

CONTROL_TIMEOUT_SECONDS = 120  # seeding a million members takes a few seconds
# A delivery that reached one of these is done: no attempt will follow.
FINAL_DELIVERY_STATUSES = ("delivered", "failed", "gone")


def sdk_error_body(error: Exception) -> dict[str, Any]:
    """The error document carried by either SDK's ApiClientError. The Marketing SDK decodes
    only ``application/json``, so a problem+json body arrives as text; the Transactional SDK
    gives a dict."""
    text = getattr(error, "text", None)
    if isinstance(text, dict):
        return text
    return dict(json.loads(str(text)))


class SandboxClient:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.marketing_url = f"{self.url}/3.0"
        self.transactional_url = f"{self.url}/api/1.3"
        self.marketing_api_key = MARKETING_API_KEY
        self.transactional_api_key = TRANSACTIONAL_API_KEY
        self.default_list_id = DEFAULT_LIST_ID
        # One keep-alive session: control calls never count as API connections anyway.
        self._session = requests.Session()

    def _call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        response = self._session.request(
            method, f"{self.url}/_sandbox{path}", json=body, params=params, timeout=CONTROL_TIMEOUT_SECONDS
        )
        response.raise_for_status()
        return response.json()

    def outbox(self, *, to: str | None = None, tag: str | None = None, template: str | None = None) -> list[Any]:
        """Accepted transactional messages, oldest first (see docs/sandbox.md for the shape)."""
        filters = {name: value for name, value in (("to", to), ("tag", tag), ("template", template)) if value}
        return list(self._call("GET", "/outbox", params=filters))

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "/stats"))

    def faults(self, **settings: Any) -> dict[str, Any]:
        """Replace the fault settings; no arguments clears them."""
        return dict(self._call("PUT", "/faults", settings))

    def seed(self, list_id: str = DEFAULT_LIST_ID, count: int = 100, *, seed: int | None = None) -> dict[str, Any]:
        """Add ``count`` generated members (an unknown list_id creates that audience)."""
        body: dict[str, Any] = {"list_id": list_id, "count": count}
        if seed is not None:
            body["seed"] = seed
        return dict(self._call("POST", "/seed", body))

    def reset(self) -> None:
        self._call("POST", "/reset")

    def options(self, **settings: str) -> dict[str, str]:
        """Change how the sandbox reads requests (``since_last_changed="exclusive"``); reset()
        restores the defaults."""
        return dict(self._call("PUT", "/options", settings))

    def set_keys(
        self,
        marketing: list[str] | None = None,
        transactional: list[str] | None = None,
        oauth: list[str] | None = None,
    ) -> dict[str, list[str]]:
        """Replace the accepted keys of the kinds given; reset() restores the defaults."""
        kinds = {"marketing": marketing, "transactional": transactional, "oauth": oauth}
        return dict(self._call("PUT", "/keys", {kind: keys for kind, keys in kinds.items() if keys is not None}))

    # -- OAuth 2 (login.mailchimp.com) ------------------------------------------------------
    def register_oauth_app(self, client_id: str, client_secret: str, redirect_uri: str, **fields: Any) -> Any:
        """Add or replace an OAuth app; its redirect URI is the only one /oauth2/authorize accepts."""
        body = {"client_id": client_id, "client_secret": client_secret, "redirect_uri": redirect_uri, **fields}
        return self._call("POST", "/oauth/apps", body)

    def oauth_tokens(self) -> list[dict[str, Any]]:
        """Tokens issued by /oauth2/token, with ``client_id`` and ``revoked``."""
        return list(self._call("GET", "/oauth/tokens"))

    def revoke_oauth(self, *, access_token: str | None = None, client_id: str | None = None) -> Any:
        """Revoke one token, or every token of an app, as a user disconnecting an integration does."""
        body = {name: value for name, value in (("access_token", access_token), ("client_id", client_id)) if value}
        return self._call("POST", "/oauth/revoke", body)

    def oauth_settings(self, *, code_ttl_seconds: float) -> Any:
        return self._call("PUT", "/oauth/settings", {"code_ttl_seconds": code_ttl_seconds})

    # -- audience webhooks -----------------------------------------------------------------
    def webhooks(self) -> list[dict[str, Any]]:
        """Every webhook of every audience, with ``enabled``, ``disabled_reason`` and ``signed``."""
        return list(self._call("GET", "/webhooks"))

    def set_webhook(self, webhook_id: str, **settings: Any) -> dict[str, Any]:
        """``secret="..."`` (or None) signs deliveries; ``enabled=True`` re-enables a webhook."""
        return dict(self._call("PATCH", f"/webhooks/{webhook_id}", settings))

    def webhook_settings(self, **settings: Any) -> dict[str, Any]:
        """``timeout_seconds``, ``retry_delays``, ``retry_window_seconds``, ``batch_seconds``,
        ``batch_max_events``; reset() restores them."""
        return dict(
            self._call("PUT", "/webhook-settings", settings) if settings else self._call("GET", "/webhook-settings")
        )

    def webhook_deliveries(self, **filters: str) -> list[dict[str, Any]]:
        """Deliveries, oldest first; filter by kind (audience, mandrill), type, url, status,
        list_id, webhook_id."""
        return list(self._call("GET", "/webhook-deliveries", params=filters))

    def wait_for_deliveries(self, count: int = 1, timeout: float = 10.0, **filters: str) -> list[dict[str, Any]]:
        """Wait until ``count`` deliveries matching the filters are done (delivered, failed or
        gone, unless ``status`` is one of the filters); returns them all."""
        deadline = time.monotonic() + timeout
        while True:
            deliveries = [
                delivery
                for delivery in self.webhook_deliveries(**filters)
                if "status" in filters or delivery["status"] in FINAL_DELIVERY_STATUSES
            ]
            if len(deliveries) >= count:
                return deliveries
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(deliveries)} of {count} webhook deliveries ({filters}) after {timeout} s")
            time.sleep(0.02)

    # -- Mandrill webhooks and message events ------------------------------------------------
    def mandrill_webhooks(self) -> list[dict[str, Any]]:
        """Mandrill's webhooks as ``webhooks/list`` answers (with ``auth_key``), plus ``enabled``."""
        return list(self._call("GET", "/mandrill-webhooks"))

    def add_mandrill_webhook(self, url: str, events: list[str], description: str = "") -> dict[str, Any]:
        """``webhooks/add`` through the official SDK (the URL must answer the HEAD check)."""
        return dict(self.transactional_sdk().webhooks.add({"url": url, "events": events, "description": description}))

    def message_event(self, message_id: str, event: str, url: str | None = None) -> dict[str, Any]:
        """The recipient of outbox message ``message_id`` opens it, clicks ``url`` (default: the
        message's first link) or unsubscribes: ``{"event": {...}, "webhooks_queued": n}``."""
        body = {"event": event, **({"url": url} if url is not None else {})}
        return dict(self._call("POST", f"/outbox/{quote(message_id, safe='')}/events", body))

    def test_mandrill_webhook(self, webhook_id: int) -> dict[str, Any]:
        """Queue Mandrill's test POST (an empty list signed with ``test-webhook``); returns the delivery."""
        return dict(self._call("POST", f"/mandrill-webhooks/{webhook_id}/test"))

    def act_on_member(
        self, email: str, action: str, *, list_id: str = DEFAULT_LIST_ID, actor: str = "user", **fields: Any
    ) -> dict[str, Any]:
        """What a subscriber (``actor="user"``) or an admin does outside the API: ``confirm``,
        ``unsubscribe`` (reason=), ``clean`` (reason=), ``change_email`` (new_email=),
        ``update_profile`` (merge_fields=, interests=). Fires the audience's webhooks."""
        body = {"action": action, "as": actor, **fields}
        return dict(self._call("POST", f"/members/{list_id}/{quote(email, safe='@')}/actions", body))

    def send_campaign(self, list_id: str = DEFAULT_LIST_ID, subject: str = "", **fields: Any) -> dict[str, Any]:
        """Fire the ``campaign`` webhook event (``status="sent"`` or ``"canceled"``)."""
        return dict(self._call("POST", "/campaigns", {"list_id": list_id, "subject": subject, **fields}))

    def oauth_marketing_sdk(self, access_token: str) -> mailchimp_marketing.Client:
        """The official Marketing SDK with an OAuth token (it sends ``Authorization: Bearer``)."""
        client = mailchimp_marketing.Client()
        client.set_config({"access_token": access_token, "server": OAUTH_SERVER_PREFIX})
        client.api_client.host = self.marketing_url
        return client

    def marketing_sdk(self, api_key: str = MARKETING_API_KEY, **config: Any) -> mailchimp_marketing.Client:
        """The official Marketing SDK, pointed at the sandbox."""
        client = mailchimp_marketing.Client()
        client.set_config({"api_key": api_key, "server": OAUTH_SERVER_PREFIX, **config})
        client.api_client.host = self.marketing_url
        return client

    def transactional_sdk(self, api_key: str = TRANSACTIONAL_API_KEY) -> mailchimp_transactional.Client:
        """The official Transactional SDK, pointed at the sandbox."""
        client = mailchimp_transactional.Client(api_key)
        client.api_client.host = self.transactional_url
        return client

    def close(self) -> None:
        self._session.close()
