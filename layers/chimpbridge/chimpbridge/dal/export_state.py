"""The export's items in the state table, one partition per export stream.

A stream is an audience exported in one format with one status selection; it has its own
watermark, so a CSV and a JSON Lines export of the same audience never steal each other's
changes. Items (``pk`` = ``export#<list>#<format>#<statuses>``):

* ``lock``: the run that may export now (``owner``, ``run_id``, ``lease_until``). Taken with a
  conditional write; renewed every invocation; a lease that ran out (its owner died) can be
  taken over.
* ``checkpoint``: where the running run stands (a :class:`Checkpoint`, as JSON). Written only
  while holding the lock (a transaction checks it).
* ``watermark``: ``last_changed`` up to which the stream is exported (exclusive).
* ``run#<run_id>``: a finished run, so a second start of the same schedule tick does nothing.

The end of a run is one transaction: watermark moved (only from the value the run started
from), run recorded, checkpoint and lock deleted (only if still ours).

A cancelled transaction means one of two things, told apart by its cancellation reasons: a
condition failed (the lock is another run's now, or the watermark moved): :class:`ExportBusy`;
or DynamoDB was busy (a conflicting transaction, throttling): :class:`StateContention`, worth
another try.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chimpbridge.dal import aws
from chimpbridge.errors import ExportBusy
from chimpbridge.models.export import Checkpoint, ExportFormat, MemberStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

RUN_RECORD_DAYS = 35
# Cancellation reasons that say nothing about our conditions: try the same transaction again.
_CONTENTION_REASONS = {
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
}


class StateContention(Exception):
    """DynamoDB cancelled a transaction for contention or throttling, not for a condition."""


def stream_key(list_id: str, fmt: ExportFormat, statuses: list[MemberStatus] | None) -> str:
    selection = "+".join(statuses) if statuses else "all"
    return f"export#{list_id}#{fmt}#{selection}"


def _conditional_failure(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code")
    return code in {"ConditionalCheckFailedException", "TransactionCanceledException"}


@dataclass(frozen=True)
class LockHolder:
    owner: str
    run_id: str
    lease_until: int


class ExportState:
    def __init__(self, table: str, stream: str) -> None:
        self.table = table
        self.stream = stream

    def _key(self, sort_key: str) -> dict[str, AttributeValueTypeDef]:
        return {"pk": {"S": self.stream}, "sk": {"S": sort_key}}

    def _get(self, sort_key: str) -> dict[str, Any] | None:
        item = aws.dynamodb().get_item(TableName=self.table, Key=self._key(sort_key), ConsistentRead=True)
        return item.get("Item")

    # ------------------------------------------------------------ runs and watermark
    def run_finished(self, run_id: str) -> bool:
        return self._get(f"run#{run_id}") is not None

    def watermark(self) -> int | None:
        item = self._get("watermark")
        return None if item is None else int(item["watermark"]["N"])

    # ------------------------------------------------------------ lock
    def acquire(self, owner: str, run_id: str, lease_seconds: int) -> None:
        """Take or renew the lock; :class:`ExportBusy` if another live run holds it."""
        now = int(time.time())
        try:
            aws.dynamodb().put_item(
                TableName=self.table,
                Item={
                    **self._key("lock"),
                    "owner": {"S": owner},
                    "run_id": {"S": run_id},
                    "lease_until": {"N": str(now + lease_seconds)},
                    "expires_at": {"N": str(now + lease_seconds + 86_400)},
                },
                ConditionExpression="attribute_not_exists(pk) OR #owner = :owner OR lease_until < :now",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}, ":now": {"N": str(now)}},
            )
        except ClientError as error:
            if not _conditional_failure(error):
                raise
            holder = self.holder()
            detail = f"run {holder.run_id}, lease until {holder.lease_until}" if holder else "another run"
            raise ExportBusy(f"{self.stream} is being exported by {detail}") from None

    def holder(self) -> LockHolder | None:
        item = self._get("lock")
        if item is None:
            return None
        return LockHolder(item["owner"]["S"], item["run_id"]["S"], int(item["lease_until"]["N"]))

    def release(self, owner: str) -> None:
        """Drop the lock if it is still ours (an abort after a takeover must not free it)."""
        try:
            aws.dynamodb().delete_item(
                TableName=self.table,
                Key=self._key("lock"),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as error:
            if not _conditional_failure(error):
                raise

    def _lock_check(self, owner: str) -> TransactWriteItemTypeDef:
        return {
            "ConditionCheck": {
                "TableName": self.table,
                "Key": self._key("lock"),
                "ConditionExpression": "#owner = :owner",
                "ExpressionAttributeNames": {"#owner": "owner"},
                "ExpressionAttributeValues": {":owner": {"S": owner}},
            }
        }

    # ------------------------------------------------------------ checkpoint
    def checkpoint(self) -> Checkpoint | None:
        item = self._get("checkpoint")
        return None if item is None else Checkpoint.model_validate_json(item["data"]["S"])

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store ``checkpoint`` if its owner still holds the lock (else :class:`ExportBusy`)."""
        put: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table,
                "Item": {
                    **self._key("checkpoint"),
                    "run_id": {"S": checkpoint.run_id},
                    "data": {"S": checkpoint.model_dump_json()},
                },
            }
        }
        self._transact([self._lock_check(checkpoint.owner), put], "the lock was taken over; checkpoint not saved")

    def delete_checkpoint(self, run_id: str) -> None:
        try:
            aws.dynamodb().delete_item(
                TableName=self.table,
                Key=self._key("checkpoint"),
                ConditionExpression="run_id = :run",
                ExpressionAttributeValues={":run": {"S": run_id}},
            )
        except ClientError as error:
            if not _conditional_failure(error):
                raise

    # ------------------------------------------------------------ the end of a run
    def commit(self, checkpoint: Checkpoint, *, manifest_key: str, finished_at: int) -> None:
        """Move the watermark, record the run, drop checkpoint and lock: all or nothing."""
        expected = checkpoint.previous_watermark
        watermark_item: dict[str, AttributeValueTypeDef] = {
            **self._key("watermark"),
            "watermark": {"N": str(checkpoint.window_before)},
            "run_id": {"S": checkpoint.run_id},
            "manifest_key": {"S": manifest_key},
            "updated_at": {"N": str(finished_at)},
        }
        watermark: TransactWriteItemTypeDef
        if expected is None:
            first = "attribute_not_exists(pk)"
            watermark = {"Put": {"TableName": self.table, "Item": watermark_item, "ConditionExpression": first}}
        else:
            watermark = {
                "Put": {
                    "TableName": self.table,
                    "Item": watermark_item,
                    "ConditionExpression": "watermark = :previous",
                    "ExpressionAttributeValues": {":previous": {"N": str(expected)}},
                }
            }
        record: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table,
                "Item": {
                    **self._key(f"run#{checkpoint.run_id}"),
                    "outcome": {"S": "exported"},
                    "manifest_key": {"S": manifest_key},
                    "rows": {"N": str(checkpoint.rows)},
                    "finished_at": {"N": str(finished_at)},
                    "expires_at": {"N": str(finished_at + RUN_RECORD_DAYS * 86_400)},
                },
            }
        }
        drop_checkpoint: TransactWriteItemTypeDef = {
            "Delete": {"TableName": self.table, "Key": self._key("checkpoint")}
        }
        drop_lock: TransactWriteItemTypeDef = {
            "Delete": {
                "TableName": self.table,
                "Key": self._key("lock"),
                "ConditionExpression": "#owner = :owner",
                "ExpressionAttributeNames": {"#owner": "owner"},
                "ExpressionAttributeValues": {":owner": {"S": checkpoint.owner}},
            }
        }
        self._transact(
            [watermark, record, drop_checkpoint, drop_lock],
            "the lock was taken over or the watermark moved; run not committed",
        )

    def _transact(self, items: list[TransactWriteItemTypeDef], conflict: str) -> None:
        try:
            aws.dynamodb().transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = {str(reason.get("Code")) for reason in error.response.get("CancellationReasons", [])} - {"None"}
            if reasons and "ConditionalCheckFailed" not in reasons:
                if reasons <= _CONTENTION_REASONS:
                    raise StateContention(
                        f"{self.stream}: transaction cancelled ({', '.join(sorted(reasons))})"
                    ) from error
                raise
            raise ExportBusy(f"{self.stream}: {conflict}") from None
