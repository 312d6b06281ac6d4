"""Mandrill's webhooks at work: the events of every accepted send and every control action go,
batched, to each webhook that wants them.

A batch collects events for ``batch_seconds`` (a delivery setting) from its first event, up to
``batch_max_events`` (Mandrill's 1,000); then it is sealed and posted form-encoded as
``mandrill_events``, signed with the webhook's ``auth_key`` over its URL as it is at that
attempt. The shared delivery machinery retries it on anything but a 2xx (Mandrill has no 410
rule); the webhook's ``batches_sent``, ``events_sent``, ``last_sent_at`` and ``last_error``
follow. Sync events (the rejection list's ``blacklist`` changes) travel in batches of their own,
never mixed with message events. Everything but the sending happens with the state lock held.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sandbox.mailchimp.mandrill_events import (
    REJECT_REASONS,
    TRACKING_EVENTS,
    events_after_send,
    first_link,
    start_tracking,
    sync_event,
    tracking_event,
)
from sandbox.mailchimp.mandrill_webhooks import TEST_WEBHOOK_KEY, MandrillWebhook, signed_form
from sandbox.mailchimp.webhook_delivery import Delivery, WebhookDeliveries

if TYPE_CHECKING:
    from sandbox.mailchimp.state import SandboxState


# The deliveries log keeps this much of a batch's body (the receiver gets it whole): 1,000 kept
# batches of 1,000 events would otherwise hold about a gigabyte.
LOGGED_BODY_CHARS = 64 * 1024


class TrackingRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def _mandrill_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


class MandrillBatch:
    """A delivery target: the events of one batch to one webhook (``key`` overrides the
    webhook's own, for the test POST)."""

    stops_on_gone = False

    def __init__(self, webhook: MandrillWebhook, generation: int, key: str | None = None) -> None:
        self.webhook = webhook
        self.generation = generation
        self.key = key
        self.events: list[dict[str, Any]] = []
        self.sealed = False

    def request(self, delivery: Delivery) -> tuple[str, bytes, dict[str, str]] | None:
        if not self.webhook.enabled:
            return None
        url = self.webhook.url
        body, headers = signed_form(self.key or self.webhook.auth_key, url, self.events)
        self.sealed = True
        logged = body.decode()
        if len(logged) > LOGGED_BODY_CHARS:
            logged = logged[:LOGGED_BODY_CHARS] + f"... ({len(logged)} characters in all)"
        delivery.url, delivery.body = url, logged
        return url, body, headers

    def settle(self, delivery: Delivery) -> None:
        if delivery.status == "delivered":
            self.webhook.batches_sent += 1
            self.webhook.events_sent += len(self.events)
            self.webhook.last_sent_at = time.time()
        elif delivery.error:
            self.webhook.last_error = f"POST to {delivery.url} failed: {delivery.error}"


class MandrillTracking:
    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self.webhooks: dict[int, MandrillWebhook] = {}
        # The open batch of each webhook, for message events and for sync events.
        self._open: dict[tuple[int, str], tuple[MandrillBatch, Delivery]] = {}

    @property
    def _deliveries(self) -> WebhookDeliveries:
        return self._state.deliveries

    def reset(self) -> None:
        self.webhooks.clear()
        self._open.clear()

    # -- events ----------------------------------------------------------------------------
    def after_send(self, entry: dict[str, Any]) -> int:
        """Track the recipients of a new outbox entry and publish their events."""
        ts = int(entry["ts"])
        events = []
        for recipient in entry["recipients"]:
            start_tracking(recipient)
            events += events_after_send(entry, recipient, ts)
        for event in events:
            self._remember_rejection(event)
        return self.publish(events)

    def fire(self, message_id: str, name: str, url: str | None = None) -> dict[str, Any]:
        """The person opens, clicks or unsubscribes from a message they received."""
        if name not in TRACKING_EVENTS:
            raise TrackingRefused(400, f"event must be one of {list(TRACKING_EVENTS)}")
        entry, recipient = self._recipient(message_id)
        if recipient.get("state") not in ("sent", "delivered"):
            state = recipient.get("state", recipient["status"])
            raise TrackingRefused(409, f"message {message_id} to {recipient['email']} was not delivered ({state})")
        if name == "click":
            url = url or first_link(recipient["html"])
            if not url:
                raise TrackingRefused(400, "a click needs a url (the message has no link to default to)")
        event = tracking_event(entry, recipient, name, int(time.time()), url)
        self._remember_rejection(event)
        return {"event": event, "webhooks_queued": self.publish([event])}

    def publish(self, events: list[dict[str, Any]]) -> int:
        """Add each event to the open batch of every webhook that wants it; returns how many
        (event, webhook) pairs were queued."""
        queued = 0
        for webhook in self.webhooks.values():
            for event in events:
                family = "message" if "event" in event else "sync"
                if webhook.wants(event["event"] if family == "message" else event["type"]):
                    self._batch_for(webhook, family).append(event)
                    queued += 1
        return queued

    def rejection_changed(self, action: str, entry: dict[str, Any]) -> int:
        """A ``blacklist`` sync event: an address was added to (``add``) or removed from
        (``remove``) the rejection list."""
        return self.publish([sync_event(action, entry, int(time.time()))])

    def _batch_for(self, webhook: MandrillWebhook, family: str) -> _OpenBatch:
        settings = self._deliveries.settings
        generation = self._deliveries.generation
        current = self._open.get((webhook.id, family))
        if current is not None:
            batch, delivery = current
            if not batch.sealed and batch.generation == generation and len(batch.events) < settings.batch_max_events:
                return _OpenBatch(batch, delivery)
        batch = MandrillBatch(webhook, generation)
        delivery = self._delivery(webhook, "batch")
        self._open[(webhook.id, family)] = (batch, delivery)
        self._deliveries.submit(delivery, batch, delay=settings.batch_seconds)
        return _OpenBatch(batch, delivery)

    def _delivery(self, webhook: MandrillWebhook, kind: str) -> Delivery:
        return Delivery(
            id=self._deliveries.new_id(),
            webhook_id=webhook.id,
            list_id="",
            url=webhook.url,
            type=kind,
            source="",
            fired_at=_mandrill_time(time.time()),
            body="",
            signed=True,
            kind="mandrill",
        )

    def send_test(self, webhook_id: int) -> dict[str, Any]:
        """What Mandrill posts when a URL fails its HEAD check: an empty list, signed with the
        generic key ``test-webhook``."""
        webhook = self.webhooks.get(webhook_id)
        if webhook is None:
            raise TrackingRefused(404, f"no Mandrill webhook {webhook_id}")
        delivery = self._delivery(webhook, "test")
        self._deliveries.submit(delivery, MandrillBatch(webhook, self._deliveries.generation, TEST_WEBHOOK_KEY))
        return delivery.document()

    # -- helpers ---------------------------------------------------------------------------
    def _recipient(self, message_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        for entry in reversed(self._state.outbox):
            for recipient in entry["recipients"]:
                if recipient["_id"] == message_id:
                    return entry, recipient
        raise TrackingRefused(404, f"no message {message_id} in the outbox")

    def _remember_rejection(self, event: dict[str, Any]) -> None:
        """Mandrill puts an address that bounced hard, complained or unsubscribed on its
        rejection list: later sends to it are rejected with that reason."""
        reason = REJECT_REASONS.get(event["event"])
        if reason is None:
            return
        email = event["msg"]["email"]
        now = _mandrill_time(time.time())
        entry = self._state.rejects[email.lower()] = {
            "email": email,
            "reason": reason,
            "detail": event["msg"].get("diag") or f"{event['event']} event",
            "created_at": now,
            "last_event_at": now,
            "expires_at": None,
            "expired": False,
            "subaccount": None,
            "sender": None,
        }
        self.rejection_changed("add", entry)


class _OpenBatch:
    """The batch an event joins, and its delivery (whose ``events`` name what it carries)."""

    def __init__(self, batch: MandrillBatch, delivery: Delivery) -> None:
        self.batch = batch
        self.delivery = delivery

    def append(self, event: dict[str, Any]) -> None:
        self.batch.events.append(event)
        self.delivery.events.append(event.get("event") or event["type"])
