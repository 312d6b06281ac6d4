"""The control API under /_sandbox (see docs/sandbox.md). Never subject to injected faults."""

from __future__ import annotations

import gc
import random
import time
from typing import Any

from sandbox.mailchimp.constants import DEFAULT_LIST_ID
from sandbox.mailchimp.http_types import Request, Response, json_response, parse_json_body
from sandbox.mailchimp.state import KEY_KINDS, SandboxState
from sandbox.mailchimp.traffic import FaultSettings, Traffic

PREFIX = "/_sandbox"
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
        }
        handler = handlers.get(route)
        try:
            if handler is None:
                known_path = any(path == route[1] for _, path in handlers)
                raise ControlError(405 if known_path else 404, f"no control call {request.method} {request.path}")
            return json_response(handler(request))
        except ControlError as error:
            return json_response({"error": str(error)}, error.status)

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
        return self.traffic.snapshot()

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
