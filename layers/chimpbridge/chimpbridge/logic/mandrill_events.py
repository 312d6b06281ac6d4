"""The Mandrill events worker: each queued event normalised, recorded, published once, and the
addresses that must not get email again suppressed.

Normalising follows django-anymail's Mandrill webhook: the event (``event``, or ``type`` for the
denylist/allowlist sync events), the recipient's message id ``_id``, ``ts``, the recipient,
the bounce or rejection reason (``msg.bounce_description``), the receiving server's answer
(``msg.diag``), tags, metadata, and for opens and clicks the user agent, IP and clicked URL.

Exactly once, as far as it shows: an event is identified by (event, ``_id``, ``ts``) (sync
events: type, action, address, ts) and remembered as processed after it was recorded and
published. A batch delivered twice finds every event processed and changes nothing. A worker
that dies in between processes the rest again: records are written so that a repeat writes
the same thing, suppression keeps its first mark, and the event may be published twice with
the same ``event_id`` (consumers deduplicate on it, as EventBridge delivers at least once).

Suppression: a hard bounce, a spam complaint, an unsubscribe, and an address Mandrill put on
its denylist (a ``blacklist`` sync event adding or changing an entry) mark the address
(dal/email_records.py); the email sender then skips it. A ``reject`` event marks nothing by
itself: its reason may be ours (an unverified sending domain rejects everyone); the sender
marks an address whose send Mandrill rejected for the address's sake.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from chimpbridge import settings
from chimpbridge.dal import events as bus
from chimpbridge.dal.email_records import EmailEvent, EmailRecords, address_hash
from chimpbridge.models.mandrill_events import (
    DETAIL_TYPES,
    EVENT_SOURCE,
    STATE_RANK,
    STATES,
    BatchOutcome,
    MandrillEvent,
    MandrillEventDetail,
    QueuedEvents,
)
from chimpbridge.observability import count, logger

SECONDS_PER_DAY = 86_400
# Message events -> the business metric each one adds to (bounce and complaint rates are
# alarmed on in the template against MandrillSent).
METRICS: dict[str, str] = {
    "send": "MandrillSent",
    "deferral": "MandrillDeferred",
    "delivered": "MandrillDelivered",
    "soft_bounce": "MandrillSoftBounced",
    "hard_bounce": "MandrillBounced",
    "open": "MandrillOpened",
    "click": "MandrillClicked",
    "spam": "MandrillComplaints",
    "unsub": "MandrillUnsubscribed",
    "reject": "MandrillRejected",
    "blacklist": "MandrillDenylistChanged",
    "whitelist": "MandrillAllowlistChanged",
}
SUPPRESSING_EVENTS: dict[str, str] = {"hard_bounce": "hard_bounce", "spam": "spam", "unsub": "unsub"}
SYNC_TYPES = ("blacklist", "whitelist")
T = TypeVar("T")


def process(batch: QueuedEvents) -> BatchOutcome:
    """Normalise, record, suppress, publish and remember the events of one queued slice."""
    config = settings.load(settings.MandrillEventsSettings)
    records = EmailRecords(config.state_table)
    outcome = BatchOutcome(events=len(batch.events))
    normalised: dict[str, MandrillEvent] = {}
    for raw in batch.events:
        event = normalise(raw)
        if event is None:
            outcome.ignored += 1
        else:
            normalised.setdefault(event.detail.event_id, event)
    seen = records.processed(normalised) if normalised else set()
    fresh = [event for event_id, event in normalised.items() if event_id not in seen]
    outcome.duplicates = len(normalised) - len(fresh)
    if fresh:
        now = int(time.time())
        email_events = [e for e in (_email_event(event) for event in fresh) if e is not None]
        records.record_history(email_events, now + config.record_days * SECONDS_PER_DAY)
        _each(
            config.concurrency,
            _latest_per_email(email_events),
            lambda e: records.record_state(e, now + config.record_days * SECONDS_PER_DAY),
        )
        to_suppress = [e for e in fresh if e.suppress_reason and e.recipient_hash]
        marks = _each(
            config.concurrency,
            to_suppress,
            lambda e: records.suppress(e.recipient_hash or "", e.suppress_reason or "", e.detail.event_id),
        )
        outcome.suppressed = sum(1 for marked in marks if marked)
        bus.publish_many(
            [
                bus.BusEvent(config.event_bus_name, EVENT_SOURCE, event.detail_type, event.detail.to_json())
                for event in fresh
            ]
        )
        records.mark_processed([event.detail.event_id for event in fresh], now + config.dedupe_days * SECONDS_PER_DAY)
    outcome.processed = len(fresh)
    for event in fresh:
        outcome.kinds[event.detail.event] = outcome.kinds.get(event.detail.event, 0) + 1
    _report(outcome, [e for e in fresh if e.suppress_reason])
    return outcome


def normalise(raw: dict[str, Any]) -> MandrillEvent | None:
    """The event as published, or None for what is not a Mandrill event we know (ignored)."""
    kind = raw.get("event")
    ts = _int(raw.get("ts"))
    if ts is None:
        return None
    if kind in STATES:
        return _message_event(str(kind), ts, raw)
    if kind is None and raw.get("type") in SYNC_TYPES:
        return _sync_event(str(raw["type"]), ts, raw)
    return None


def _message_event(kind: str, ts: int, raw: dict[str, Any]) -> MandrillEvent:
    found = raw.get("msg")
    msg: dict[str, Any] = found if isinstance(found, dict) else {}
    mandrill_id = _text(raw.get("_id")) or _text(msg.get("_id"))
    metadata = msg.get("metadata") if isinstance(msg.get("metadata"), dict) else None
    email = _text(msg.get("email"))
    detail = MandrillEventDetail(
        event_id=_event_id(kind, mandrill_id or "", str(ts)),
        event=kind,
        timestamp=datetime.fromtimestamp(ts, UTC),
        email=email,
        mandrill_id=mandrill_id,
        state=_text(msg.get("state")),
        subject=_text(msg.get("subject")),
        sender=_text(msg.get("sender")),
        template=_text(msg.get("template")),
        tags=[str(tag) for tag in msg.get("tags") or [] if isinstance(tag, str)] or None,
        metadata=metadata or None,
        identity_id=_text((metadata or {}).get("identity_id")),
        hook=_text((metadata or {}).get("hook")),
        idempotency_key=_text((metadata or {}).get("idempotency_key")),
        reject_reason=_reject_reason(kind, msg),
        diagnostic=_text(msg.get("diag")),
        user_agent=_text(raw.get("user_agent")),
        ip=_text(raw.get("ip")),
        url=_text(raw.get("url")) if kind == "click" else None,
    )
    return MandrillEvent(
        detail_type=DETAIL_TYPES[kind],
        detail=detail,
        suppress_reason=SUPPRESSING_EVENTS.get(kind),
        recipient_hash=address_hash(email) if email else None,
    )


def _sync_event(kind: str, ts: int, raw: dict[str, Any]) -> MandrillEvent:
    entry = raw.get("reject") or raw.get("entry") or {}
    entry = entry if isinstance(entry, dict) else {}
    email = _text(entry.get("email"))
    action = _text(raw.get("action"))
    reason = _text(entry.get("reason"))
    detail = MandrillEventDetail(
        event_id=_event_id(kind, action or "", email or "", str(ts)),
        event=kind,
        timestamp=datetime.fromtimestamp(ts, UTC),
        email=email,
        action=action,
        reject_reason=reason,
        detail=_text(entry.get("detail")),
    )
    suppress = kind == "blacklist" and action in ("add", "change")
    return MandrillEvent(
        detail_type=DETAIL_TYPES[kind],
        detail=detail,
        suppress_reason=f"denylist:{reason or 'unknown'}" if suppress else None,
        recipient_hash=address_hash(email) if email else None,
    )


def _reject_reason(kind: str, msg: dict[str, Any]) -> str | None:
    if kind in ("hard_bounce", "soft_bounce", "deferral"):
        return _text(msg.get("bounce_description"))
    if kind == "reject":
        reject = msg.get("reject")
        if isinstance(reject, dict):
            return _text(reject.get("reason"))
        return _text(msg.get("reject_reason")) or _text(msg.get("bounce_description"))
    return None


def _event_id(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:32]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _email_event(event: MandrillEvent) -> EmailEvent | None:
    """The event as one of our emails' history, when the send's metadata says whose it is."""
    detail = event.detail
    if detail.event not in STATES or not detail.identity_id or not detail.idempotency_key:
        return None
    details = {
        name: value
        for name, value in (
            ("reject_reason", detail.reject_reason),
            ("diagnostic", detail.diagnostic),
            ("url", detail.url),
        )
        if value
    }
    ts = int(detail.timestamp.timestamp())
    return EmailEvent(
        identity_id=detail.identity_id,
        idempotency_key=detail.idempotency_key,
        hook=detail.hook,
        event=detail.event,
        state=STATES[detail.event],
        ts=ts,
        order=ts * 100 + STATE_RANK[detail.event],
        event_id=detail.event_id,
        mandrill_id=detail.mandrill_id,
        recipient_hash=event.recipient_hash,
        details=details,
    )


def _latest_per_email(events: Iterable[EmailEvent]) -> list[EmailEvent]:
    latest: dict[tuple[str, str], EmailEvent] = {}
    for event in events:
        key = (event.identity_id, event.idempotency_key)
        if key not in latest or latest[key].order < event.order:
            latest[key] = event
    return list(latest.values())


def _each(concurrency: int, items: list[T], call: Callable[[T], Any]) -> list[Any]:
    if len(items) <= 1 or concurrency == 1:
        return [call(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        return list(pool.map(call, items))


def _report(outcome: BatchOutcome, suppressing: list[MandrillEvent]) -> None:
    for kind, number in outcome.kinds.items():
        count(METRICS[kind], number)
    if outcome.duplicates:
        count("MandrillEventDuplicate", outcome.duplicates)
    if outcome.ignored:
        count("MandrillEventIgnored", outcome.ignored)
    if outcome.suppressed:
        count("EmailSuppressionAdded", outcome.suppressed)
    for event in suppressing:
        logger.info(
            "address suppressed",
            extra={"email": event.detail.email, "reason": event.suppress_reason, "event_id": event.detail.event_id},
        )
    logger.info("mandrill events processed", extra=outcome.model_dump())
