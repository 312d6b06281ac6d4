"""Delivering webhooks from background threads (the API answer never waits for them), with a
timeout (Mailchimp's 10 s), retries of failed deliveries on a schedule compressed from
Mailchimp's 75 minutes, and every delivery kept (newest first out) for tests and the page.

What is posted, where and how it is signed belongs to a delivery's target: an audience webhook
(one form-encoded event, a 410 disables the webhook for good) or a Mandrill batch (see
mandrill_tracking.py). The queue, the senders and the retry schedule are shared."""

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
from typing import Any, Protocol

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
    # Mandrill collects events for a while and posts them together, at most 1,000 to a batch.
    batch_seconds: float = 0.5
    batch_max_events: int = 1000

    @classmethod
    def from_body(cls, body: dict[str, Any], current: DeliverySettings) -> DeliverySettings:
        unknown = set(body) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown webhook settings {sorted(unknown)}; use {sorted(cls.__dataclass_fields__)}")
        delays = body.get("retry_delays", current.retry_delays)
        if not isinstance(delays, list | tuple) or not delays or not all(_positive(delay) for delay in delays):
            raise ValueError("retry_delays must be a non-empty list of positive seconds")
        batch_max_events = body.get("batch_max_events", current.batch_max_events)
        if not isinstance(batch_max_events, int) or isinstance(batch_max_events, bool):
            raise ValueError("batch_max_events must be an integer between 1 and 1000")
        settings = cls(
            timeout_seconds=float(body.get("timeout_seconds", current.timeout_seconds)),
            retry_delays=tuple(float(delay) for delay in delays),
            retry_window_seconds=float(body.get("retry_window_seconds", current.retry_window_seconds)),
            batch_seconds=float(body.get("batch_seconds", current.batch_seconds)),
            batch_max_events=batch_max_events,
        )
        if settings.timeout_seconds <= 0 or settings.retry_window_seconds < 0:
            raise ValueError("timeout_seconds must be positive and retry_window_seconds not negative")
        if settings.batch_seconds < 0 or not 1 <= settings.batch_max_events <= 1000:
            raise ValueError("batch_seconds must not be negative and batch_max_events be between 1 and 1000")
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
    """One POST to one webhook, through all its attempts. ``status``: pending (first attempt
    not made yet), retrying, delivered, failed (the retry window closed), gone (the receiver
    answered 410 and the webhook was disabled). ``kind``: ``audience`` (one Mailchimp event) or
    ``mandrill`` (a batch of Mandrill events, named in ``events``)."""

    id: int
    webhook_id: str | int
    list_id: str
    url: str
    type: str
    source: str
    fired_at: str
    body: str
    signed: bool
    kind: str = "audience"
    events: list[str] = field(default_factory=list)
    status: str = "pending"
    attempts: int = 0
    answered: int | None = None  # the last HTTP status received (None: no answer)
    error: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    created: float = field(default_factory=time.time)

    def document(self) -> dict[str, Any]:
        return asdict(self)


class DeliveryTarget(Protocol):
    """Where a delivery goes and what happens after each attempt. Both methods are called with
    the sandbox state's lock held, so they may read and change webhooks."""

    stops_on_gone: bool  # a 410 ends the delivery (status gone) instead of a retry

    def request(self, delivery: Delivery) -> tuple[str, bytes, dict[str, str]] | None:
        """URL, body and headers of the next attempt; None when the webhook takes no more."""
        ...

    def settle(self, delivery: Delivery) -> None:
        """After an attempt was recorded (``delivery.status`` says how it went)."""
        ...


class AudienceTarget:
    """An audience webhook: the event's form as it was queued, signed afresh on each attempt
    when the webhook has a secret; a 410 disables the webhook."""

    stops_on_gone = True

    def __init__(self, webhook: Webhook) -> None:
        self.webhook = webhook

    def request(self, delivery: Delivery) -> tuple[str, bytes, dict[str, str]] | None:
        if not self.webhook.enabled:
            return None
        body = delivery.body.encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": DELIVERY_USER_AGENT}
        if self.webhook.secret is not None:
            headers[SIGNATURE_HEADER] = signature(self.webhook.secret, int(time.time()), body)
        return self.webhook.url, body, headers

    def settle(self, delivery: Delivery) -> None:
        if delivery.status == "gone":
            self.webhook.enabled = False
            self.webhook.disabled_reason = f"{self.webhook.url} answered 410 Gone to a delivery"
            logger.info("webhook %s disabled: its receiver answered 410", self.webhook.id)


class WebhookDeliveries:
    """Queues deliveries and sends them from background threads.

    ``lock`` is the sandbox state's lock: webhooks are read and disabled under it. Deliveries
    made before a reset() are dropped at their next step, so one test's receiver never sees
    the next test's retries."""

    def __init__(self, lock: threading.RLock) -> None:
        self._state_lock = lock
        self._lock = threading.Condition()
        self._queue: list[tuple[float, int, Delivery, DeliveryTarget, int]] = []
        self._sequence = itertools.count()
        self._ids = itertools.count(1)
        self._generation = 0
        self._stopping = False
        self._log: deque[Delivery] = deque(maxlen=DELIVERIES_KEPT)
        self.settings = DeliverySettings()
        # Daemon threads (not an executor's): stopping the sandbox never waits for a receiver
        # that hangs until the timeout.
        self._due: queue.SimpleQueue[tuple[Delivery, DeliveryTarget, int] | None] = queue.SimpleQueue()
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
            id=self.new_id(),
            webhook_id=webhook.id,
            list_id=webhook.list_id,
            url=webhook.url,
            type=event.type,
            source=source,
            fired_at=dict(event.fields)["fired_at"],
            body=event.body().decode(),
            signed=webhook.secret is not None,
        )
        return self.submit(delivery, AudienceTarget(webhook))

    def new_id(self) -> int:
        return next(self._ids)

    @property
    def generation(self) -> int:
        """Changes at every clear(): work made before it is dropped."""
        return self._generation

    def submit(self, delivery: Delivery, target: DeliveryTarget, delay: float = 0.0) -> Delivery:
        """Log the delivery and make its first attempt after ``delay`` seconds."""
        with self._lock:
            self._log.append(delivery)
            self._push(time.monotonic() + delay, delivery, target)
        return delivery

    def _push(self, due: float, delivery: Delivery, target: DeliveryTarget, generation: int | None = None) -> None:
        generation = self._generation if generation is None else generation
        heapq.heappush(self._queue, (due, next(self._sequence), delivery, target, generation))
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
                _, _, delivery, target, generation = heapq.heappop(self._queue)
                if generation == self._generation:
                    self._due.put((delivery, target, generation))

    def _send(self) -> None:
        while (work := self._due.get()) is not None:
            self._attempt(*work)

    # -- sending -------------------------------------------------------------------------
    def _attempt(self, delivery: Delivery, target: DeliveryTarget, generation: int) -> None:
        settings = self.settings
        with self._state_lock:
            request = target.request(delivery)
        if request is None:
            self._give_up(delivery, generation, "the webhook was deleted or disabled before this attempt")
            return
        url, body, headers = request
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
        self._record(delivery, target, generation, started, answered, error)

    def _record(
        self,
        delivery: Delivery,
        target: DeliveryTarget,
        generation: int,
        started: float,
        answered: int | None,
        error: str,
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
            elif answered == 410 and target.stops_on_gone:
                delivery.status = "gone"
            else:
                next_attempt = delivery.attempts + 1
                due_in = settings.delay_before(next_attempt)
                if time.time() + due_in - delivery.created <= settings.retry_window_seconds:
                    delivery.status = "retrying"
                    self._push(time.monotonic() + due_in, delivery, target, generation)
                else:
                    delivery.status = "failed"
        with self._state_lock:
            target.settle(delivery)

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
