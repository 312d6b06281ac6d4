"""``/webhooks/mandrill``: Mandrill's signed deliveries, acknowledged fast and queued.

Mandrill retries a batch that was not answered 200 for hours, and holds the batches after it
back meanwhile; so the receiver does only what must happen before the answer: check the
signature, check the shape, and put the events on the Mandrill events queue (a worker
normalises, records and publishes them: logic/mandrill_events.py). Nothing is queued unless
the signature is right.

Order: size, the form, the signature over the URL and the form fields (bad: 401), the
``mandrill_events`` JSON (malformed: 422), then the queue (SQS failing: 503, Mandrill retries).
An empty list is answered 200 and queues nothing: it is what Mandrill's "send test" and its
second check of a new URL post, signed with the generic key ``test-webhook``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from chimpbridge import settings
from chimpbridge.dal import queues
from chimpbridge.errors import FieldError, InvalidRequest, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from chimpbridge.logic.mandrill_webhook_auth import verify
from chimpbridge.models.checks import read_json
from chimpbridge.models.mandrill_events import (
    EVENTS_FIELD,
    TEST_WEBHOOK_KEY,
    MandrillDelivery,
    MandrillWebhookAnswer,
)
from chimpbridge.observability import count, logger
from chimpbridge.secrets import MandrillWebhookKeys, get_secret

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def accept(delivery: MandrillDelivery, read_body: Callable[[], bytes]) -> MandrillWebhookAnswer:
    """Authenticate one POST and queue its events; raises to refuse it."""
    config = settings.load(settings.MandrillWebhookSettings)
    body = read_body()
    if len(body) > config.max_body_bytes:
        count("MandrillWebhookInvalid")
        raise PayloadTooLarge(f"The body is larger than {config.max_body_bytes} bytes.")
    fields = _form(delivery.content_type, body)
    raw_events = fields.get(EVENTS_FIELD)
    keys = get_secret(config.secret_arn, MandrillWebhookKeys).accepted_keys
    empty = raw_events is not None and raw_events.strip() == "[]"
    try:
        verify(
            delivery.signature,
            signed_url(config, delivery),
            fields,
            [*keys, TEST_WEBHOOK_KEY] if empty else keys,
        )
    except Unauthorized:
        count("MandrillWebhookBadSignature")
        logger.warning("mandrill webhook signature refused", extra={"request_id": delivery.request_id})
        raise
    events = _events(raw_events)
    if not events:
        count("MandrillWebhookTest")
        return MandrillWebhookAnswer(status="ok")
    messages = _queue_messages(events, delivery.request_id, config.max_message_bytes)
    queues.send_all(config.queue_url, messages)
    count("MandrillEventsQueued", len(events))
    logger.info("mandrill events queued", extra={"events": len(events), "messages": len(messages)})
    return MandrillWebhookAnswer(status="queued", events=len(events), messages=len(messages))


def signed_url(config: settings.MandrillWebhookSettings, delivery: MandrillDelivery) -> str:
    """The URL Mandrill signs: configured, else the API's public URL's, else where we were called."""
    if config.webhook_url:
        return config.webhook_url
    if config.public_url:
        return config.public_url.rstrip("/") + "/webhooks/mandrill"
    return delivery.called_url


def _form(content_type: str | None, body: bytes) -> dict[str, str]:
    """The form's fields (a repeated one keeps its last value, as PHP, Mandrill's side, reads it)."""
    media_type = (content_type or FORM_CONTENT_TYPE).split(";")[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        count("MandrillWebhookInvalid")
        raise UnsupportedMediaType(f"Send the events form-encoded ({FORM_CONTENT_TYPE}).")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        count("MandrillWebhookInvalid")
        raise InvalidRequest("The body is not UTF-8.") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def _events(raw: str | None) -> list[dict[str, object]]:
    if raw is None:
        count("MandrillWebhookInvalid")
        raise InvalidRequest(f"The form has no {EVENTS_FIELD} field.")
    try:
        # Mandrill's values are Mandrill's to check: only what no JSON of ours may be (too deep,
        # NaN, numbers past 40 characters) is refused here.
        events = read_json(raw, text_rules=False)
    except InvalidRequest as invalid:
        count("MandrillWebhookInvalid")
        errors = [
            FieldError(EVENTS_FIELD if error.field == "body" else f"{EVENTS_FIELD}.{error.field}", error.message)
            for error in invalid.errors
        ]
        raise InvalidRequest(f"{EVENTS_FIELD} is not JSON.", errors) from None
    if not isinstance(events, list) or not all(isinstance(item, dict) for item in events):
        count("MandrillWebhookInvalid")
        raise InvalidRequest(f"{EVENTS_FIELD} must be a JSON array of event objects.")
    return events


def _queue_messages(events: list[dict[str, object]], request_id: str | None, max_bytes: int) -> list[str]:
    """The events as QueuedEvents JSON documents of at most ``max_bytes`` each. An event too large
    for any message on its own is left out (counted and logged): Mandrill would retry it forever."""
    head = (
        json.dumps(
            {"version": 1, "request_id": request_id, "received_at": datetime.now(UTC).isoformat()},
            separators=(",", ":"),
        )[:-1]
        + ',"events":['
    )
    budget = max_bytes - len(head.encode()) - 2
    messages: list[str] = []
    parts: list[str] = []
    size = 0
    for event in events:
        part = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        part_size = len(part.encode()) + 1
        if part_size > budget:
            count("MandrillEventTooLarge")
            logger.error("mandrill event too large to queue; left out", extra={"bytes": part_size})
            continue
        if parts and size + part_size > budget:
            messages.append(head + ",".join(parts) + "]}")
            parts, size = [], 0
        parts.append(part)
        size += part_size
    if parts:
        messages.append(head + ",".join(parts) + "]}")
    return messages
