"""The audience import's items in the state table, one partition per audience.

Items (``pk`` = ``import#<list_id>``):

* ``lock``: the run that may import into the audience now (``owner``, ``run_id``,
  ``lease_until``): one at a time per audience, so two files never split the connection budget
  between them. Taken with a conditional write, renewed every invocation; a lease that ran out
  (its owner died) can be taken over.
* ``checkpoint#<run_id>``: where a run stands (an :class:`ImportCheckpoint`, as JSON). Written
  only while holding the lock (a transaction checks it). One per run, so a run that lost the
  lock to another file resumes where it stood once that one is done.
* ``run#<run_id>``: a finished run. The run id is made of the audience and the object's ETag,
  so the same content uploaded again finds it and does nothing.

The end of a run is one transaction: run recorded, checkpoint and lock deleted (the lock only if
still ours). A transaction cancelled for a failed condition is :class:`ImportBusy`; one
cancelled for contention or throttling is :class:`StateContention`, worth another try.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chimpbridge.dal import aws
from chimpbridge.errors import ImportBusy
from chimpbridge.models.audience_import import ImportCheckpoint

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

# Long enough that a file uploaded again months later is still recognised.
RUN_RECORD_DAYS = 400
# Checkpoints of runs whose execution was lost entirely expire on their own.
CHECKPOINT_DAYS = 14
_CONTENTION_REASONS = {
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
}


class StateContention(Exception):
    """DynamoDB cancelled a transaction for contention or throttling, not for a condition."""


@dataclass(frozen=True)
class LockHolder:
    owner: str
    run_id: str
    lease_until: int


@dataclass(frozen=True)
class FinishedRun:
    run_id: str
    summary_key: str
    results_key: str
    rows: int


def _conditional_failure(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code")
    return code in {"ConditionalCheckFailedException", "TransactionCanceledException"}


class ImportState:
    def __init__(self, table: str, list_id: str) -> None:
        self.table = table
        self.partition = f"import#{list_id}"

    def _key(self, sort_key: str) -> dict[str, AttributeValueTypeDef]:
        return {"pk": {"S": self.partition}, "sk": {"S": sort_key}}

    def _get(self, sort_key: str) -> dict[str, Any] | None:
        item = aws.dynamodb().get_item(TableName=self.table, Key=self._key(sort_key), ConsistentRead=True)
        return item.get("Item")

    # ------------------------------------------------------------ finished runs
    def finished(self, run_id: str) -> FinishedRun | None:
        item = self._get(f"run#{run_id}")
        if item is None:
            return None
        return FinishedRun(run_id, item["summary_key"]["S"], item["results_key"]["S"], int(item["rows"]["N"]))

    # ------------------------------------------------------------ lock
    def acquire(self, owner: str, run_id: str, lease_seconds: int) -> None:
        """Take or renew the lock; :class:`ImportBusy` if another live run holds it."""
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
            raise ImportBusy(f"{self.partition} is being imported into by {detail}") from None

    def holder(self) -> LockHolder | None:
        item = self._get("lock")
        if item is None:
            return None
        return LockHolder(item["owner"]["S"], item["run_id"]["S"], int(item["lease_until"]["N"]))

    def release(self, owner: str) -> None:
        """Drop the lock if it is still ours."""
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

    # ------------------------------------------------------------ checkpoints
    def checkpoint(self, run_id: str) -> ImportCheckpoint | None:
        item = self._get(f"checkpoint#{run_id}")
        return None if item is None else ImportCheckpoint.model_validate_json(item["data"]["S"])

    def save_checkpoint(self, checkpoint: ImportCheckpoint) -> None:
        """Store ``checkpoint`` if its owner still holds the lock (else :class:`ImportBusy`)."""
        put: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table,
                "Item": {
                    **self._key(f"checkpoint#{checkpoint.run_id}"),
                    "run_id": {"S": checkpoint.run_id},
                    "data": {"S": checkpoint.model_dump_json()},
                    "expires_at": {"N": str(int(time.time()) + CHECKPOINT_DAYS * 86_400)},
                },
            }
        }
        self._transact([self._lock_check(checkpoint.owner), put], "the lock was taken over; checkpoint not saved")

    def delete_checkpoint(self, run_id: str) -> None:
        aws.dynamodb().delete_item(TableName=self.table, Key=self._key(f"checkpoint#{run_id}"))

    # ------------------------------------------------------------ the end of a run
    def commit(self, checkpoint: ImportCheckpoint, *, summary_key: str, results_key: str, finished_at: int) -> None:
        """Record the run, drop its checkpoint and the lock: all or nothing."""
        record: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table,
                "Item": {
                    **self._key(f"run#{checkpoint.run_id}"),
                    "summary_key": {"S": summary_key},
                    "results_key": {"S": results_key},
                    "object_key": {"S": checkpoint.object.key},
                    "etag": {"S": checkpoint.object.etag},
                    "rows": {"N": str(checkpoint.counts.rows)},
                    "finished_at": {"N": str(finished_at)},
                    "expires_at": {"N": str(finished_at + RUN_RECORD_DAYS * 86_400)},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        drop_checkpoint: TransactWriteItemTypeDef = {
            "Delete": {"TableName": self.table, "Key": self._key(f"checkpoint#{checkpoint.run_id}")}
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
        self._transact([record, drop_checkpoint, drop_lock], "the lock was taken over; run not committed")

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
                        f"{self.partition}: transaction cancelled ({', '.join(sorted(reasons))})"
                    ) from error
                raise
            raise ImportBusy(f"{self.partition}: {conflict}") from None
