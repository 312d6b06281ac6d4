"""The control API under /_sandbox (see docs/sandbox.md). Never subject to injected faults."""

from __future__ import annotations

import gc
import random
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from sandbox.mailchimp import audience_actions
from sandbox.mailchimp.constants import DEFAULT_LIST_ID
from sandbox.mailchimp.http_types import Request, Response, json_response, parse_json_body
from sandbox.mailchimp.mandrill_tracking import TrackingRefused
from sandbox.mailchimp.problems import MarketingError
from sandbox.mailchimp.state import KEY_KINDS, SandboxState
from sandbox.mailchimp.traffic import FaultSettings, Traffic
from sandbox.mailchimp.webhook_delivery import DeliverySettings

PREFIX = "/_sandbox"
_MEMBER_ACTIONS = re.compile(r"^/members/(?P<list_id>[^/]+)/(?P<reference>[^/]+)/actions$")
_WEBHOOK = re.compile(r"^/webhooks/(?P<webhook_id>[^/]+)$")
_MESSAGE_EVENTS = re.compile(r"^/outbox/(?P<message_id>[^/]+)/events$")
_MANDRILL_WEBHOOK_TEST = re.compile(r"^/mandrill-webhooks/(?P<webhook_id>[0-9]+)/test$")
MAX_SEED_COUNT = 5_000_000
_FREEZE_AFTER_SEEDING = 100_000


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class ControlApi:
    def __init__(self, state: SandboxState, traffic: Traffic, owns_process: bool = False) -> None:
        self.state = state
        self.traffic = traffic
        self._owns_process = owns_process

    def handle(self, request: Request) -> Response:
        route = (request.method, request.path[len(PREFIX) :].rstrip("/"))
        handlers = {
            ("GET", "/health"): self._health,
            ("GET", "/outbox"): self._outbox,
            ("DELETE", "/outbox"): self._clear_outbox,
            ("GET", "/stats"): self._stats,
            ("GET", "/faults"): self._faults,
            ("PUT", "/faults"): self._set_faults,
            ("DELETE", "/faults"): self._clear_faults,
            ("POST", "/seed"): self._seed,
            ("POST", "/reset"): self._reset,
            ("GET", "/keys"): self._keys,
            ("PUT", "/keys"): self._set_keys,
            ("GET", "/options"): self._options,
            ("PUT", "/options"): self._set_options,
            ("GET", "/webhooks"): self._webhooks,
            ("GET", "/webhook-deliveries"): self._webhook_deliveries,
            ("DELETE", "/webhook-deliveries"): self._clear_webhook_deliveries,
            ("GET", "/webhook-settings"): self._webhook_settings,
            ("PUT", "/webhook-settings"): self._set_webhook_settings,
            ("POST", "/campaigns"): self._send_campaign,
            ("GET", "/mandrill-webhooks"): self._mandrill_webhooks,
        }
        handler: Callable[..., Any] | None = handlers.get(route)
        params: dict[str, str] = {}
        known_path = any(path == route[1] for _, path in handlers)
        for method, pattern, candidate in self._pattern_routes():
            match = pattern.match(route[1])
            if match:
                known_path = True
                if method == request.method:
                    handler, params = candidate, {key: unquote(value) for key, value in match.groupdict().items()}
        try:
            if handler is None:
                raise ControlError(405 if known_path else 404, f"no control call {request.method} {request.path}")
            return json_response(handler(request, **params))
        except ControlError as error:
            return json_response({"error": str(error)}, error.status)
        except (audience_actions.ActionRefused, TrackingRefused) as refused:
            return json_response({"error": str(refused)}, refused.status)
        except MarketingError as error:
            # The Marketing API's own rules refused the change (a fake address, a required field).
            return json_response({"error": error.detail, "title": error.title, "errors": error.errors}, error.status)

    def _pattern_routes(self) -> list[tuple[str, re.Pattern[str], Callable[..., Any]]]:
        return [
            ("POST", _MEMBER_ACTIONS, self._member_action),
            ("PATCH", _WEBHOOK, self._update_webhook),
            ("POST", _MESSAGE_EVENTS, self._message_event),
            ("POST", _MANDRILL_WEBHOOK_TEST, self._test_mandrill_webhook),
        ]

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = parse_json_body(request.body)
        except ValueError as error:
            raise ControlError(400, f"body is not JSON: {error}") from None
        if not isinstance(body, dict):
            raise ControlError(400, "body must be a JSON object")
        return body

    def _health(self, request: Request) -> dict[str, Any]:
        return {"status": "ok"}

    def _outbox(self, request: Request) -> list[dict[str, Any]]:
        """Accepted transactional messages, oldest first; ?to=, ?tag= and ?template= filter."""
        to = request.query.get("to", "").lower()
        tag = request.query.get("tag")
        template = request.query.get("template")
        with self.state.lock:
            messages = list(self.state.outbox)
        return [
            message
            for message in messages
            if (not to or any(recipient["email"].lower() == to for recipient in message["to"]))
            and (not tag or tag in message["tags"])
            and (not template or message["template_name"] == template)
        ]

    def _clear_outbox(self, request: Request) -> dict[str, Any]:
        with self.state.lock:
            self.state.outbox.clear()
        return {"cleared": True}

    def _stats(self, request: Request) -> dict[str, Any]:
        with self.state.lock:
            schemes = dict(self.state.auth_schemes)
        return {**self.traffic.snapshot(), "auth_schemes": schemes}

    def _faults(self, request: Request) -> dict[str, Any]:
        return self.traffic.faults.to_dict()

    def _set_faults(self, request: Request) -> dict[str, Any]:
        try:
            settings = FaultSettings.from_body(self._body(request))
        except (TypeError, ValueError) as error:
            raise ControlError(400, str(error)) from None
        self.traffic.set_faults(settings)
        return settings.to_dict()

    def _clear_faults(self, request: Request) -> dict[str, Any]:
        self.traffic.set_faults(FaultSettings())
        return FaultSettings().to_dict()

    def _seed(self, request: Request) -> dict[str, Any]:
        """Generated members, quickly. An unknown list_id creates that audience."""
        body = self._body(request)
        list_id = str(body.get("list_id") or DEFAULT_LIST_ID)
        count = body.get("count")
        if not isinstance(count, int) or not 0 <= count <= MAX_SEED_COUNT:
            raise ControlError(400, f"count must be an integer between 0 and {MAX_SEED_COUNT}")
        return self.seed(list_id, count, body.get("seed"), body.get("name"))

    def seed(self, list_id: str, count: int, seed: int | None = None, name: str | None = None) -> dict[str, Any]:
        rng = random.Random(seed) if seed is not None else self.state.rng
        started = time.perf_counter()
        with self.state.lock:
            audience = self.state.audiences.get(list_id)
            if audience is None:
                audience = self.state.add_audience(list_id, str(name or f"Seeded Audience {list_id}"))
            added = audience.members.seed(count, rng, self.state.now())
            total = len(audience.members.order)
        if self._owns_process and count >= _FREEZE_AFTER_SEEDING:
            # Keep the collector from re-scanning a million slots on every full collection
            # (a third of the time of a projected page). Process-wide, hence only when the
            # sandbox runs in its own process.
            gc.freeze()
        return {
            "list_id": list_id,
            "added": added,
            "total_items": total,
            "seconds": round(time.perf_counter() - started, 3),
        }

    def _reset(self, request: Request) -> dict[str, Any]:
        self.state.reset()
        self.traffic.reset()
        return {"reset": True}

    def _options(self, request: Request) -> dict[str, str]:
        with self.state.lock:
            inclusive = self.state.since_last_changed_inclusive
        return {"since_last_changed": "inclusive" if inclusive else "exclusive"}

    def _set_options(self, request: Request) -> dict[str, str]:
        """How the member list reads its filters: ``{"since_last_changed": "exclusive"}`` makes
        ``since_last_changed`` mean "changed after", as Mailchimp's reference words it."""
        body = self._body(request)
        unknown = set(body) - {"since_last_changed"}
        if unknown:
            raise ControlError(400, f"unknown options {sorted(unknown)}; use ['since_last_changed']")
        if "since_last_changed" in body:
            value = body["since_last_changed"]
            if value not in ("inclusive", "exclusive"):
                raise ControlError(400, "since_last_changed must be 'inclusive' or 'exclusive'")
            with self.state.lock:
                self.state.since_last_changed_inclusive = value == "inclusive"
        return self._options(request)

    def _keys(self, request: Request) -> dict[str, list[str]]:
        with self.state.lock:
            return {kind: sorted(keys) for kind, keys in self.state.keys.items()}

    def _set_keys(self, request: Request) -> dict[str, list[str]]:
        """Replace the accepted keys of the kinds given (marketing, oauth, transactional)."""
        body = self._body(request)
        unknown = set(body) - set(KEY_KINDS)
        if unknown:
            raise ControlError(400, f"unknown key kinds {sorted(unknown)}; use {list(KEY_KINDS)}")
        for kind, keys in body.items():
            if not isinstance(keys, list) or not all(isinstance(key, str) and key for key in keys):
                raise ControlError(400, f"{kind} must be a list of non-empty strings")
        with self.state.lock:
            for kind, keys in body.items():
                self.state.keys[kind] = set(keys)
        return self._keys(request)

    # -- audience webhooks -----------------------------------------------------------------
    def _webhooks(self, request: Request) -> list[dict[str, Any]]:
        """Every audience's webhooks, with the sandbox's own state (enabled, signed)."""
        with self.state.lock:
            return [
                webhook.control_document(self.state.base_url)
                for audience in self.state.audiences.values()
                for webhook in audience.webhooks.values()
            ]

    def _update_webhook(self, request: Request, webhook_id: str) -> dict[str, Any]:
        """``{"secret": "..." | null, "enabled": true}``: set the signing secret, re-enable."""
        body = self._body(request)
        unknown = set(body) - {"secret", "enabled"}
        if unknown:
            raise ControlError(400, f"unknown webhook settings {sorted(unknown)}; use ['enabled', 'secret']")
        secret = body.get("secret")
        if secret is not None and (not isinstance(secret, str) or not secret):
            raise ControlError(400, "secret must be a non-empty string or null")
        if "enabled" in body and not isinstance(body["enabled"], bool):
            raise ControlError(400, "enabled must be true or false")
        with self.state.lock:
            for audience in self.state.audiences.values():
                webhook = audience.webhooks.get(webhook_id)
                if webhook is not None:
                    if "secret" in body:
                        webhook.secret = body["secret"]
                    if "enabled" in body:
                        webhook.enabled = body["enabled"]
                        webhook.disabled_reason = "" if webhook.enabled else "disabled through the control API"
                    return webhook.control_document(self.state.base_url)
        raise ControlError(404, f"no webhook {webhook_id}")

    def _webhook_deliveries(self, request: Request) -> list[dict[str, Any]]:
        """Deliveries, oldest first; ?kind=, ?type=, ?url=, ?status=, ?list_id=, ?webhook_id= filter."""
        filters = {
            name: request.query[name]
            for name in ("kind", "type", "url", "status", "list_id", "webhook_id")
            if request.query.get(name)
        }
        return [
            delivery
            for delivery in self.state.deliveries.snapshot()
            if all(str(delivery[name]) == value for name, value in filters.items())
        ]

    def _clear_webhook_deliveries(self, request: Request) -> dict[str, Any]:
        self.state.deliveries.clear()
        return {"cleared": True}

    def _webhook_settings(self, request: Request) -> dict[str, Any]:
        return self.state.deliveries.settings.to_dict()

    def _set_webhook_settings(self, request: Request) -> dict[str, Any]:
        """``{"timeout_seconds": 10, "retry_delays": [0.2, 0.5, 1], "retry_window_seconds": 75}``"""
        try:
            settings = DeliverySettings.from_body(self._body(request), self.state.deliveries.settings)
        except (TypeError, ValueError) as error:
            raise ControlError(400, str(error)) from None
        self.state.deliveries.set_settings(settings)
        return settings.to_dict()

    def _member_action(self, request: Request, list_id: str, reference: str) -> dict[str, Any]:
        return audience_actions.act_on_member(self.state, list_id, reference, self._body(request))

    def _send_campaign(self, request: Request) -> dict[str, Any]:
        return audience_actions.send_campaign(self.state, self._body(request))

    # -- Mandrill tracking -----------------------------------------------------------------
    def _message_event(self, request: Request, message_id: str) -> dict[str, Any]:
        """``{"event": "open" | "click" | "unsub", "url": "..."}``: the recipient of the outbox
        message ``message_id`` (a recipient's ``_id``) acts on it; the event goes to the
        Mandrill webhooks that want it."""
        body = self._body(request)
        unknown = set(body) - {"event", "url"}
        if unknown:
            raise ControlError(400, f"unknown fields {sorted(unknown)}; use ['event', 'url']")
        url = body.get("url")
        if url is not None and not isinstance(url, str):
            raise ControlError(400, "url must be a string")
        with self.state.lock:
            return self.state.mandrill.fire(message_id, str(body.get("event")), url)

    def _mandrill_webhooks(self, request: Request) -> list[dict[str, Any]]:
        """Mandrill's webhooks as ``webhooks/list`` shows them, plus ``enabled``."""
        with self.state.lock:
            return [
                {**webhook.document(), "enabled": webhook.enabled} for webhook in self.state.mandrill.webhooks.values()
            ]

    def _test_mandrill_webhook(self, request: Request, webhook_id: str) -> dict[str, Any]:
        """Post Mandrill's test delivery: ``mandrill_events=[]`` signed with ``test-webhook``."""
        with self.state.lock:
            return self.state.mandrill.send_test(int(webhook_id))
