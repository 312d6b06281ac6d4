"""What Mandrill told us about our emails, in the state table.

Items (``pk``, ``sk``):

* ``email#<identity id>``, ``<idempotency key>``: the email's latest state (``state``,
  ``last_event``, ``last_ts``, ``mandrill_id``, ``hook``, ``recipient_hash``). Written only by a
  later event (``order``: ts, then what the event means), so batches in any order, or twice,
  leave the latest.
* ``email#<identity id>``, ``<idempotency key>#event#<ts>#<event>#<_id>``: one per event
  (the history). A repeat writes the same item again.
* ``mandrill-event#<event id>``, ``processed``: the event was recorded and published (TTL).
* ``suppression#<sha256 of the lowercased address>``, ``address``: emails to it are not sent.
  The address itself is not stored.

One query answers "what happened to the emails of identity X" (docs/mandrill-webhooks.md).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chimpbridge.dal import aws
from chimpbridge.models.keys import key_part

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, WriteRequestTypeDef

SUPPRESSION_SORT_KEY = "address"
PROCESSED_SORT_KEY = "processed"
_BATCH_GET = 100  # DynamoDB's limits per call
_BATCH_WRITE = 25
_UNPROCESSED_ATTEMPTS = 8


def address_hash(email: str) -> str:
    """sha256 of the trimmed, NFC, lowercased address: how suppressions are keyed (one key for
    every spelling of an address; ASCII addresses hash as they always did)."""
    return hashlib.sha256(key_part(email).lower().encode("utf-8")).hexdigest()


def suppression_key(recipient_hash: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": f"suppression#{recipient_hash}"}, "sk": {"S": SUPPRESSION_SORT_KEY}}


def _processed_key(event_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": f"mandrill-event#{event_id}"}, "sk": {"S": PROCESSED_SORT_KEY}}


@dataclass(frozen=True)
class Suppression:
    reason: str
    marked_at: int
    event_id: str | None = None


@dataclass(frozen=True)
class EmailEvent:
    """One event about one of our emails (identity, idempotency key from the send's metadata)."""

    identity_id: str
    idempotency_key: str
    hook: str | None
    event: str
    state: str
    ts: int
    order: int
    event_id: str
    mandrill_id: str | None
    recipient_hash: str | None
    details: dict[str, str]


class EmailRecords:
    def __init__(self, table: str) -> None:
        self.table = table

    # ------------------------------------------------------------ suppression
    def suppression(self, recipient_hash: str) -> Suppression | None:
        item = aws.dynamodb().get_item(TableName=self.table, Key=suppression_key(recipient_hash)).get("Item")
        if item is None:
            return None
        event_id = item.get("event_id", {}).get("S")
        return Suppression(item["reason"]["S"], int(item["marked_at"]["N"]), event_id)

    def suppress(self, recipient_hash: str, reason: str, event_id: str) -> bool:
        """Mark the address; False when it was marked already (the first mark is kept)."""
        try:
            aws.dynamodb().put_item(
                TableName=self.table,
                Item={
                    **suppression_key(recipient_hash),
                    "reason": {"S": reason},
                    "event_id": {"S": event_id},
                    "marked_at": {"N": str(int(time.time()))},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # ------------------------------------------------------------ events seen
    def processed(self, event_ids: Iterable[str]) -> set[str]:
        """Which of ``event_ids`` were processed before."""
        ids = list(dict.fromkeys(event_ids))
        seen: set[str] = set()
        for start in range(0, len(ids), _BATCH_GET):
            keys = [_processed_key(event_id) for event_id in ids[start : start + _BATCH_GET]]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ProjectionExpression": "pk"}}
            for _ in range(_UNPROCESSED_ATTEMPTS):
                response = aws.dynamodb().batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    seen.add(item["pk"]["S"].removeprefix("mandrill-event#"))
                request = dict(response.get("UnprocessedKeys") or {})
                if not request:
                    break
            else:
                raise RuntimeError("DynamoDB left keys unread after every attempt")
        return seen

    def mark_processed(self, event_ids: Iterable[str], expires_at: int) -> None:
        self._write(
            [{"PutRequest": {"Item": {**_processed_key(i), "expires_at": {"N": str(expires_at)}}}} for i in event_ids]
        )

    # ------------------------------------------------------------ email records
    def record_history(self, events: Iterable[EmailEvent], expires_at: int) -> None:
        writes: list[WriteRequestTypeDef] = []
        for event in events:
            sort_key = f"{event.idempotency_key}#event#{event.ts:011d}#{event.event}#{event.mandrill_id or '-'}"
            item: dict[str, AttributeValueTypeDef] = {
                "pk": {"S": f"email#{event.identity_id}"},
                "sk": {"S": sort_key},
                "event": {"S": event.event},
                "state": {"S": event.state},
                "ts": {"N": str(event.ts)},
                "event_id": {"S": event.event_id},
                "expires_at": {"N": str(expires_at)},
                **{name: {"S": value} for name, value in event.details.items()},
            }
            if event.mandrill_id:
                item["mandrill_id"] = {"S": event.mandrill_id}
            writes.append({"PutRequest": {"Item": item}})
        self._write(writes)

    def record_state(self, event: EmailEvent, expires_at: int) -> bool:
        """Make ``event`` the email's latest state unless a later one is there; True if it is."""
        values: dict[str, AttributeValueTypeDef] = {
            ":state": {"S": event.state},
            ":event": {"S": event.event},
            ":ts": {"N": str(event.ts)},
            ":order": {"N": str(event.order)},
            ":event_id": {"S": event.event_id},
            ":expires": {"N": str(expires_at)},
            ":hook": {"S": event.hook or "-"},
        }
        assignments = [
            "#state = :state",
            "last_event = :event",
            "last_ts = :ts",
            "#order = :order",
            "last_event_id = :event_id",
            "expires_at = :expires",
            "hook = :hook",
        ]
        if event.mandrill_id:
            values[":mandrill_id"] = {"S": event.mandrill_id}
            assignments.append("mandrill_id = :mandrill_id")
        if event.recipient_hash:
            values[":recipient_hash"] = {"S": event.recipient_hash}
            assignments.append("recipient_hash = :recipient_hash")
        try:
            aws.dynamodb().update_item(
                TableName=self.table,
                Key={"pk": {"S": f"email#{event.identity_id}"}, "sk": {"S": event.idempotency_key}},
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression="attribute_not_exists(#order) OR #order < :order",
                ExpressionAttributeNames={"#state": "state", "#order": "order"},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def email_items(self, identity_id: str) -> list[dict[str, Any]]:
        """Every item of the emails sent to ``identity_id`` (state and history), as DynamoDB returns them."""
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"email#{identity_id}"}},
        }
        while True:
            response = aws.dynamodb().query(**request)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _write(self, writes: list[WriteRequestTypeDef]) -> None:
        for start in range(0, len(writes), _BATCH_WRITE):
            request: dict[str, Any] = {self.table: writes[start : start + _BATCH_WRITE]}
            for _ in range(_UNPROCESSED_ATTEMPTS):
                response = aws.dynamodb().batch_write_item(RequestItems=request)
                request = dict(response.get("UnprocessedItems") or {})
                if not request:
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError("DynamoDB left items unwritten after every attempt")
