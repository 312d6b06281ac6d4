"""Delivering audience webhook events as Mailchimp does: a form-encoded POST from a background
thread (the API answer never waits for it), a timeout (Mailchimp's 10 s), retries of failed
deliveries on a schedule compressed from Mailchimp's 75 minutes, and a 410 that disables the
webhook for good. Every delivery is kept (newest first out) for tests and the page."""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from sandbox.mailchimp.webhook_payloads import WebhookEvent
from sandbox.mailchimp.webhooks import Webhook

logger = logging.getLogger(__name__)

DELIVERY_USER_AGENT = "MailChimp.com"
SIGNATURE_HEADER = "X-Mailchimp-Signature"
DELIVERIES_KEPT = 1_000
# Attempts in flight at once; more wait their turn (a hanging receiver holds one for the timeout).
_SENDERS = 16


@dataclass(frozen=True)
class DeliverySettings:
    """``retry_delays`` are the waits before the 2nd, 3rd... attempt (the last one repeats);
    no attempt starts after ``retry_window_seconds``: 75 s stand in for Mailchimp's 75 minutes."""

    timeout_seconds: float = 10.0
    retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
    retry_window_seconds: float = 75.0

    @classmethod
    def from_body(cls, body: dict[str, Any], current: DeliverySettings) -> DeliverySettings:
        unknown = set(body) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown webhook settings {sorted(unknown)}; use {sorted(cls.__dataclass_fields__)}")
        delays = body.get("retry_delays", current.retry_delays)
        if not isinstance(delays, list | tuple) or not delays or not all(_positive(delay) for delay in delays):
            raise ValueError("retry_delays must be a non-empty list of positive seconds")
        settings = cls(
            timeout_seconds=float(body.get("timeout_seconds", current.timeout_seconds)),
            retry_delays=tuple(float(delay) for delay in delays),
            retry_window_seconds=float(body.get("retry_window_seconds", current.retry_window_seconds)),
        )
        if settings.timeout_seconds <= 0 or settings.retry_window_seconds < 0:
            raise ValueError("timeout_seconds must be positive and retry_window_seconds not negative")
        return settings

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["retry_delays"] = list(self.retry_delays)
        return document

    def delay_before(self, attempt: int) -> float:
        """The wait before attempt number ``attempt`` (2 or more)."""
        return self.retry_delays[min(attempt - 2, len(self.retry_delays) - 1)]


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>``."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class Delivery:
    """One event to one webhook, through all its attempts. ``status``: pending (first attempt
    not made yet), retrying, delivered, failed (the retry window closed), gone (the receiver
    answered 410 and the webhook was disabled)."""

    id: int
    webhook_id: str
    list_id: str
    url: str
    type: str
    source: str
    fired_at: str
    body: str
    signed: bool
    status: str = "pending"
    attempts: int = 0
    answered: int | None = None  # the last HTTP status received (None: no answer)
    error: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    created: float = field(default_factory=time.time)

    def document(self) -> dict[str, Any]:
        return asdict(self)


class WebhookDeliveries:
    """Queues deliveries and sends them from background threads.

    ``lock`` is the sandbox state's lock: webhooks are read and disabled under it. Deliveries
    made before a reset() are dropped at their next step, so one test's receiver never sees
    the next test's retries."""

    def __init__(self, lock: threading.RLock) -> None:
        self._state_lock = lock
        self._lock = threading.Condition()
        self._queue: list[tuple[float, int, Delivery, Webhook, int]] = []
        self._sequence = itertools.count()
        self._ids = itertools.count(1)
        self._generation = 0
        self._stopping = False
        self._log: deque[Delivery] = deque(maxlen=DELIVERIES_KEPT)
        self.settings = DeliverySettings()
        # Daemon threads (not an executor's): stopping the sandbox never waits for a receiver
        # that hangs until the timeout.
        self._due: queue.SimpleQueue[tuple[Delivery, Webhook, int] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._schedule, name="sandbox-webhook-scheduler", daemon=True)]
        self._threads += [
            threading.Thread(target=self._send, name=f"sandbox-webhook-{number}", daemon=True)
            for number in range(_SENDERS)
        ]
        for thread in self._threads:
            thread.start()

    # -- queueing ------------------------------------------------------------------------
    def publish(self, webhooks: Iterable[Webhook], events: Iterable[WebhookEvent], source: str) -> int:
        """Queue each event for every webhook whose events and sources want it."""
        hooks = list(webhooks)
        queued = 0
        for event in events:
            for webhook in hooks:
                if webhook.wants(event.type, source):
                    self.enqueue(webhook, event, source)
                    queued += 1
        return queued

    def enqueue(self, webhook: Webhook, event: WebhookEvent, source: str) -> Delivery:
        delivery = Delivery(
            id=next(self._ids),
            webhook_id=webhook.id,
            list_id=webhook.list_id,
            url=webhook.url,
            type=event.type,
            source=source,
            fired_at=dict(event.fields)["fired_at"],
            body=event.body().decode(),
            signed=webhook.secret is not None,
        )
        with self._lock:
            self._log.append(delivery)
            self._push(time.monotonic(), delivery, webhook)
        return delivery

    def _push(self, due: float, delivery: Delivery, webhook: Webhook, generation: int | None = None) -> None:
        generation = self._generation if generation is None else generation
        heapq.heappush(self._queue, (due, next(self._sequence), delivery, webhook, generation))
        self._lock.notify()

    def _schedule(self) -> None:
        with self._lock:
            while not self._stopping:
                if not self._queue:
                    self._lock.wait()
                    continue
                due = self._queue[0][0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                _, _, delivery, webhook, generation = heapq.heappop(self._queue)
                if generation == self._generation:
                    self._due.put((delivery, webhook, generation))

    def _send(self) -> None:
        while (work := self._due.get()) is not None:
            self._attempt(*work)

    # -- sending -------------------------------------------------------------------------
    def _attempt(self, delivery: Delivery, webhook: Webhook, generation: int) -> None:
        settings = self.settings
        with self._state_lock:
            enabled, secret, url = webhook.enabled, webhook.secret, webhook.url
        if not enabled:
            self._give_up(delivery, generation, "the webhook was deleted or disabled before this attempt")
            return
        body = delivery.body.encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": DELIVERY_USER_AGENT}
        if secret is not None:
            headers[SIGNATURE_HEADER] = signature(secret, int(time.time()), body)
        started = time.time()
        answered: int | None = None
        error = ""
        try:
            response = requests.post(url, data=body, headers=headers, timeout=settings.timeout_seconds)
            answered = response.status_code
            response.close()
        except requests.Timeout:
            error = f"timeout after {settings.timeout_seconds:g} s"
        except requests.RequestException as failure:
            error = f"{type(failure).__name__}: connection failed"
        self._record(delivery, webhook, generation, started, answered, error)

    def _record(
        self, delivery: Delivery, webhook: Webhook, generation: int, started: float, answered: int | None, error: str
    ) -> None:
        settings = self.settings
        with self._lock:
            if generation != self._generation:
                return  # reset since: forget it
            delivery.attempts += 1
            delivery.answered = answered
            delivery.error = error or ("" if answered is not None and 200 <= answered < 300 else f"HTTP {answered}")
            took = round(time.time() - started, 3)
            delivery.history.append({"at": round(started, 3), "answered": answered, "error": error, "seconds": took})
            if answered is not None and 200 <= answered < 300:
                delivery.status = "delivered"
            elif answered == 410:
                delivery.status = "gone"
            else:
                next_attempt = delivery.attempts + 1
                due_in = settings.delay_before(next_attempt)
                if time.time() + due_in - delivery.created <= settings.retry_window_seconds:
                    delivery.status = "retrying"
                    self._push(time.monotonic() + due_in, delivery, webhook, generation)
                else:
                    delivery.status = "failed"
        if delivery.status == "gone":
            with self._state_lock:
                webhook.enabled = False
                webhook.disabled_reason = f"{webhook.url} answered 410 Gone to a delivery"
            logger.info("webhook %s disabled: its receiver answered 410", webhook.id)

    def _give_up(self, delivery: Delivery, generation: int, error: str) -> None:
        with self._lock:
            if generation == self._generation:
                delivery.status = "failed"
                delivery.error = error

    # -- reading and control -------------------------------------------------------------
    def snapshot(self) -> list[dict[str, Any]]:
        """Every kept delivery, oldest first."""
        with self._lock:
            return [delivery.document() for delivery in self._log]

    def set_settings(self, settings: DeliverySettings) -> None:
        self.settings = settings

    def clear(self) -> None:
        """Forget every delivery and drop the pending retries."""
        with self._lock:
            self._generation += 1
            self._queue.clear()
            self._log.clear()

    def reset(self) -> None:
        self.clear()
        self.settings = DeliverySettings()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._generation += 1
            self._queue.clear()
            self._lock.notify_all()
        for _ in range(_SENDERS):
            self._due.put(None)
