"""Mandrill's webhooks (``webhooks/add|list|info|update|delete``): the stored webhook in the
spec's shape, its generated ``auth_key``, the check of a URL before it is saved, and the
``X-Mandrill-Signature`` every POST to it carries.

Saving a URL (add, or update with a new URL) first sends it a HEAD; anything but 200 gets a
second chance as Mandrill gives it: a POST of an empty ``mandrill_events`` list signed with the
generic key ``test-webhook``. Neither answering 200 is a ValidationError and nothing is saved.
The check runs without the state lock, so a slow receiver holds up nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from sandbox.mailchimp.mandrill_send import validation_error
from sandbox.mailchimp.problems import MandrillError

USER_AGENT = "Mandrill-Webhook/1.0"
SIGNATURE_HEADER = "X-Mandrill-Signature"
# Mandrill signs the POST it sends when a URL fails the HEAD check (and only that one) with this key.
TEST_WEBHOOK_KEY = "test-webhook"
# Message events, and the sync events of the rejection lists (the sandbox never fires those).
EVENTS = (
    "send",
    "deferral",
    "hard_bounce",
    "soft_bounce",
    "delivered",
    "open",
    "click",
    "spam",
    "unsub",
    "reject",
    "blacklist",
    "whitelist",
)
_KEY_ALPHABET = string.ascii_letters + string.digits
# Webhook ids are account-wide integers; they are not reused after a reset.
_ids = itertools.count(1)


def mandrill_signature(key: str, url: str, params: Mapping[str, str]) -> str:
    """base64(HMAC-SHA1(key, url + every POST key and value, sorted by key))."""
    signed = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(key.encode(), signed.encode(), hashlib.sha1).digest()).decode()


def encode_events(events: list[dict[str, Any]]) -> str:
    """The ``mandrill_events`` value as Mandrill's PHP writes JSON: compact, non-ASCII as
    ``\\uXXXX`` and ``/`` as ``\\/`` (a receiver must verify the value as posted, not a re-encoding)."""
    return json.dumps(events, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")


def signed_form(key: str, url: str, events: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a POST of ``events`` to ``url``."""
    params = {"mandrill_events": encode_events(events)}
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: mandrill_signature(key, url, params),
    }
    return urlencode(params).encode(), headers


def _mandrill_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


@dataclass
class MandrillWebhook:
    id: int
    url: str
    events: list[str]
    description: str
    auth_key: str = field(default_factory=lambda: "".join(secrets.choice(_KEY_ALPHABET) for _ in range(22)))
    created_at: float = field(default_factory=time.time)
    last_sent_at: float | None = None
    batches_sent: int = 0
    events_sent: int = 0
    last_error: str | None = None
    # False once deleted: batches waiting for a retry see it and stop.
    enabled: bool = True

    def wants(self, event: str) -> bool:
        return self.enabled and event in self.events

    def document(self) -> dict[str, Any]:
        """The spec's Webhook: ``created_at`` with microseconds, ``last_sent_at`` without."""
        created = datetime.fromtimestamp(self.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return {
            "id": self.id,
            "url": self.url,
            "description": self.description,
            "auth_key": self.auth_key,
            "events": list(self.events),
            "created_at": created,
            "last_sent_at": None if self.last_sent_at is None else _mandrill_time(self.last_sent_at),
            "batches_sent": self.batches_sent,
            "events_sent": self.events_sent,
            "last_error": self.last_error,
        }


def _checked_url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise validation_error({"url": "Please enter a value"})
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise validation_error({"url": "Please enter a valid URL"})
    return url


def _checked_events(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(event, str) for event in value):
        raise validation_error({"events": "Please enter an array of event names"})
    unknown = [event for event in value if event not in EVENTS]
    if unknown:
        raise validation_error({"events": f"Unknown events {unknown}; use {list(EVENTS)}"})
    return list(dict.fromkeys(value))


def _checked_description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise validation_error({"description": "Please enter a string"})
    return value


def _checked_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise validation_error({"id": "Please enter an integer"})
    try:
        return int(value)
    except ValueError:
        raise validation_error({"id": "Please enter an integer"}) from None


def check_url(url: str, timeout_seconds: float) -> None:
    """HEAD, then the signed empty POST; refuses the URL unless one of them answers 200."""
    problems = []
    for method in ("HEAD", "POST"):
        body, headers = (b"", {"User-Agent": USER_AGENT})
        if method == "POST":
            body, headers = signed_form(TEST_WEBHOOK_KEY, url, [])
        try:
            response = requests.request(
                method, url, data=body or None, headers=headers, timeout=timeout_seconds, allow_redirects=False
            )
        except requests.Timeout:
            problems.append(f"{method}: no answer within {timeout_seconds:g} s")
            continue
        except requests.RequestException as error:
            problems.append(f"{method}: {type(error).__name__}")
            continue
        response.close()
        if response.status_code == 200:
            return
        problems.append(f"{method}: HTTP {response.status_code}")
    raise validation_error({"url": f"The webhook URL {url} did not answer 200 ({'; '.join(problems)})"})


class MandrillWebhookApi:
    """The ``webhooks/*`` calls over a dict of webhooks guarded by the state lock."""

    def __init__(
        self, lock: threading.RLock, webhooks: dict[int, MandrillWebhook], timeout: Callable[[], float]
    ) -> None:
        self._lock = lock
        self._webhooks = webhooks
        self._timeout = timeout  # the delivery settings' timeout, read at each check

    def _webhook(self, body: dict[str, Any]) -> MandrillWebhook:
        webhook_id = _checked_id(body.get("id"))
        webhook = self._webhooks.get(webhook_id)
        if webhook is None:
            raise MandrillError(404, "Unknown_Webhook", f"Unknown hook ID {webhook_id}")
        return webhook

    def add(self, body: dict[str, Any], version: str) -> dict[str, Any]:
        url = _checked_url(body.get("url"))
        events = _checked_events(body.get("events"))
        description = _checked_description(body.get("description"))
        check_url(url, self._timeout())
        with self._lock:
            webhook = MandrillWebhook(id=next(_ids), url=url, events=events, description=description)
            self._webhooks[webhook.id] = webhook
            return webhook.document()

    def list(self, body: dict[str, Any], version: str) -> list[dict[str, Any]]:
        with self._lock:
            return [webhook.document() for webhook in self._webhooks.values()]

    def info(self, body: dict[str, Any], version: str) -> dict[str, Any]:
        with self._lock:
            return self._webhook(body).document()

    def update(self, body: dict[str, Any], version: str) -> dict[str, Any]:
        """``url`` is required (the spec's request); events and description change when given."""
        url = _checked_url(body.get("url"))
        events = _checked_events(body.get("events")) if "events" in body else None
        description = _checked_description(body.get("description")) if "description" in body else None
        with self._lock:
            unchanged = self._webhook(body).url == url
        if not unchanged:
            check_url(url, self._timeout())
        with self._lock:
            webhook = self._webhook(body)
            webhook.url = url
            if events is not None:
                webhook.events = events
            if description is not None:
                webhook.description = description
            return webhook.document()

    def delete(self, body: dict[str, Any], version: str) -> dict[str, Any]:
        with self._lock:
            webhook = self._webhook(body)
            webhook.enabled = False
            del self._webhooks[webhook.id]
            return webhook.document()
