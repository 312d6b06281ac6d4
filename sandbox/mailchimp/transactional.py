"""The Transactional (Mandrill) API under /api/1.0 and /api/1.3: every call is a POST of a
JSON object carrying ``key``; paths work with and without the ``.json`` suffix that the
official SDK appends."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from sandbox.mailchimp.http_types import Request, Response, json_response, parse_json_body
from sandbox.mailchimp.mandrill_send import is_valid_address, send_message, validation_error
from sandbox.mailchimp.mandrill_webhooks import MandrillWebhookApi
from sandbox.mailchimp.problems import MandrillError, mandrill_error_response
from sandbox.mailchimp.state import SandboxState

PATH_PATTERN = re.compile(
    r"^/api/(?P<version>1\.0|1\.3)/(?P<call>[a-z0-9-]+/[a-z0-9-]+)(?:\.(?:json|xml|php|yaml))?/?$"
)

Handler = Callable[[dict[str, Any], str], Any]


def _mandrill_time(epoch: float) -> str:
    """Mandrill's "YYYY-MM-DD HH:MM:SS" UTC timestamps."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def _template_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


class TransactionalApi:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        webhooks = MandrillWebhookApi(
            state.lock, state.mandrill.webhooks, lambda: state.deliveries.settings.timeout_seconds
        )
        self._calls: dict[str, Handler] = {
            "users/ping": lambda body, version: "PONG!",
            "users/ping2": lambda body, version: {"PING": "PONG!"},
            "users/info": self._user_info,
            "messages/send": self._send,
            "messages/send-template": self._send_template,
            "templates/add": self._add_template,
            "templates/info": self._template_info,
            "templates/update": self._update_template,
            "templates/delete": self._delete_template,
            "templates/list": self._list_templates,
            "rejects/add": self._add_reject,
            "rejects/list": self._list_rejects,
            "rejects/delete": self._delete_reject,
            "webhooks/add": webhooks.add,
            "webhooks/list": webhooks.list,
            "webhooks/info": webhooks.info,
            "webhooks/update": webhooks.update,
            "webhooks/delete": webhooks.delete,
        }

    def handle(self, request: Request) -> Response:
        try:
            return json_response(self._dispatch(request))
        except MandrillError as error:
            return mandrill_error_response(error)

    def _dispatch(self, request: Request) -> Any:
        match = PATH_PATTERN.match(request.path)
        if request.method != "POST":
            raise MandrillError(405, "GeneralError", "Transactional API calls must be POSTed")
        try:
            body = parse_json_body(request.body)
        except ValueError:
            raise validation_error({"body": "The request body is not valid JSON"}) from None
        if not isinstance(body, dict):
            raise validation_error({"body": "The request body must be a JSON object"})
        if body.get("key") not in self.state.keys["transactional"]:
            raise MandrillError(401, "Invalid_Key", "Invalid API key")
        handler = self._calls.get(match.group("call")) if match else None
        if handler is None or match is None:
            raise MandrillError(404, "Unknown_Method", f'Unknown method "{request.path}"')
        return handler(body, match.group("version"))

    # -- users -----------------------------------------------------------------------------
    def _user_info(self, body: dict[str, Any], version: str) -> dict[str, Any]:
        return {
            "username": "sandbox",
            "created_at": "2024-01-01 00:00:00",
            "public_id": "sandbox",
            "reputation": 100,
            "hourly_quota": 1000,
            "backlog": 0,
        }

    # -- messages --------------------------------------------------------------------------
    def _send(self, body: dict[str, Any], version: str) -> list[dict[str, Any]]:
        return send_message(self.state, body, version)

    def _send_template(self, body: dict[str, Any], version: str) -> list[dict[str, Any]]:
        name = body.get("template_name")
        if not isinstance(name, str) or not name:
            raise validation_error({"template_name": "Please enter a value"})
        if not isinstance(body.get("template_content"), list):
            raise validation_error({"template_content": "Please enter an array"})
        template = self._template(name)
        return send_message(self.state, body, version, template)

    # -- templates -------------------------------------------------------------------------
    def _template(self, name: Any) -> dict[str, Any]:
        if not isinstance(name, str) or not name:
            raise validation_error({"name": "Please enter a value"})
        with self.state.lock:
            template = self.state.templates.get(_template_slug(name))
        if template is None:
            raise MandrillError(404, "Unknown_Template", f'No such template "{name}"')
        return template

    def _add_template(self, body: dict[str, Any], version: str) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise validation_error({"name": "Please enter a value"})
        slug = _template_slug(name)
        with self.state.lock:
            if slug in self.state.templates:
                raise MandrillError(400, "Invalid_Template", f'A template with name "{name}" already exists')
            now = _mandrill_time(time.time())
            template: dict[str, Any] = {"slug": slug, "name": name, "created_at": now}
            self._apply_template_fields(template, body, now)
            self.state.templates[slug] = template
            return dict(template)

    def _update_template(self, body: dict[str, Any], version: str) -> dict[str, Any]:
        template = self._template(body.get("name"))
        with self.state.lock:
            self._apply_template_fields(template, body, _mandrill_time(time.time()))
            return dict(template)

    @staticmethod
    def _apply_template_fields(template: dict[str, Any], body: dict[str, Any], now: str) -> None:
        for field in ("code", "subject", "from_email", "from_name", "text"):
            if field in body or field not in template:
                template[field] = body.get(field)
        template["labels"] = [str(label) for label in body.get("labels") or template.get("labels") or []][:10]
        template["updated_at"] = now
        template["is_broken_template"] = False
        if body.get("publish", True) is not False:
            for field in ("code", "subject", "from_email", "from_name", "text"):
                template[f"publish_{field}"] = template[field]
            template["publish_name"] = template["name"]
            template["published_at"] = now
        else:
            template.setdefault("published_at", None)
            for field in ("name", "code", "subject", "from_email", "from_name", "text"):
                template.setdefault(f"publish_{field}", None)

    def _template_info(self, body: dict[str, Any], version: str) -> dict[str, Any]:
        return dict(self._template(body.get("name")))

    def _delete_template(self, body: dict[str, Any], version: str) -> dict[str, Any]:
        template = self._template(body.get("name"))
        with self.state.lock:
            self.state.templates.pop(template["slug"], None)
        return dict(template)

    def _list_templates(self, body: dict[str, Any], version: str) -> list[dict[str, Any]]:
        label = body.get("label")
        with self.state.lock:
            return [dict(t) for t in self.state.templates.values() if not label or label in t["labels"]]

    # -- rejects ---------------------------------------------------------------------------
    def _add_reject(self, body: dict[str, Any], version: str) -> dict[str, Any]:
        email = body.get("email")
        if not isinstance(email, str) or not is_valid_address(email):
            raise validation_error({"email": "Please enter a valid email address"})
        now = _mandrill_time(time.time())
        with self.state.lock:
            self.state.rejects[email.lower()] = {
                "email": email,
                "reason": "custom",
                "detail": str(body.get("comment") or "Added manually"),
                "created_at": now,
                "last_event_at": now,
                "expires_at": None,
                "expired": False,
                "subaccount": body.get("subaccount"),
                "sender": None,
            }
            self.state.mandrill.rejection_changed("add", self.state.rejects[email.lower()])
        return {"email": email, "added": True}

    def _list_rejects(self, body: dict[str, Any], version: str) -> list[dict[str, Any]]:
        email = str(body.get("email") or "").lower()
        with self.state.lock:
            return [dict(entry) for key, entry in self.state.rejects.items() if not email or key == email]

    def _delete_reject(self, body: dict[str, Any], version: str) -> dict[str, Any]:
        email = body.get("email")
        if not isinstance(email, str):
            raise validation_error({"email": "Please enter a valid email address"})
        with self.state.lock:
            removed = self.state.rejects.pop(email.lower(), None)
            if removed is not None:
                self.state.mandrill.rejection_changed("remove", removed)
        deleted = removed is not None
        return {"email": email, "deleted": deleted, "subaccount": body.get("subaccount")}
