"""Publishing to the bundle's EventBridge bus.

``PutEvents`` answers 200 even when it refused an entry: ``FailedEntryCount`` and the entry's
``ErrorCode`` say so. A refused entry is a failure like any other, so nothing is ever counted
as published that is not on the bus. The entry's ``Time`` is left to EventBridge (the moment
of publishing); when the change happened is in the detail (``fired_at``).
"""

from __future__ import annotations

from dataclasses import dataclass

from chimpbridge.dal import aws
from chimpbridge.errors import PublishFailed


@dataclass(frozen=True)
class BusEvent:
    """One entry of ``PutEvents``: ``detail`` is the JSON text of the event's detail."""

    bus_name: str
    source: str
    detail_type: str
    detail: str


def publish(event: BusEvent) -> str:
    """Put ``event`` on its bus; returns EventBridge's event id, raises :class:`PublishFailed`."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - boto3 is lazy: dal/aws.py

    entry = {
        "EventBusName": event.bus_name,
        "Source": event.source,
        "DetailType": event.detail_type,
        "Detail": event.detail,
    }
    try:
        response = aws.events().put_events(Entries=[entry])
    except ClientError as exc:
        raise PublishFailed(f"PutEvents failed: {exc.response.get('Error', {}).get('Code', 'error')}") from None
    except BotoCoreError as exc:
        raise PublishFailed(f"PutEvents failed: {type(exc).__name__}") from None
    entries = response.get("Entries") or [{}]
    if response.get("FailedEntryCount", 0) or not entries[0].get("EventId"):
        raise PublishFailed(f"PutEvents refused the entry: {entries[0].get('ErrorCode', 'no event id')}")
    return str(entries[0]["EventId"])


# PutEvents takes at most 10 entries and 256 KiB per call.
_ENTRIES_PER_CALL = 10
_BYTES_PER_CALL = 250_000


def publish_many(events: list[BusEvent]) -> list[str]:
    """Put ``events`` on their buses, ten to a call; returns their event ids in order. Raises
    :class:`PublishFailed` if any entry was refused (those before it stay published)."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - boto3 is lazy: dal/aws.py

    ids: list[str] = []
    for chunk in _calls(events):
        entries = [
            {"EventBusName": e.bus_name, "Source": e.source, "DetailType": e.detail_type, "Detail": e.detail}
            for e in chunk
        ]
        try:
            response = aws.events(prompt=False).put_events(Entries=entries)
        except ClientError as exc:
            raise PublishFailed(f"PutEvents failed: {exc.response.get('Error', {}).get('Code', 'error')}") from None
        except BotoCoreError as exc:
            raise PublishFailed(f"PutEvents failed: {type(exc).__name__}") from None
        answered = response.get("Entries") or []
        if response.get("FailedEntryCount", 0) or len(answered) != len(entries):
            codes = sorted({str(entry.get("ErrorCode")) for entry in answered if entry.get("ErrorCode")})
            raise PublishFailed(f"PutEvents refused entries: {', '.join(codes) or 'no event ids'}")
        ids.extend(str(entry["EventId"]) for entry in answered)
    return ids


def _calls(events: list[BusEvent]) -> list[list[BusEvent]]:
    calls: list[list[BusEvent]] = []
    current: list[BusEvent] = []
    size = 0
    for event in events:
        event_size = len(event.detail.encode()) + len(event.detail_type) + len(event.source)
        if current and (len(current) == _ENTRIES_PER_CALL or size + event_size > _BYTES_PER_CALL):
            calls.append(current)
            current, size = [], 0
        current.append(event)
        size += event_size
    if current:
        calls.append(current)
    return calls
