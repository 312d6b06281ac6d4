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
