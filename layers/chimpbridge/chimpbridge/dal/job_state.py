"""What the export and the import keep alike in the state table: one partition per job stream,
a leased lock on it, checkpoints written only while holding the lock, a record per finished run,
and transactions told apart by why DynamoDB cancelled them.

Each job names the rest in its own module (dal/export_state.py, dal/import_state.py): its
partition key, where its checkpoints live, what a finished run records, and the domain error
that says "another run holds this" (``busy``).

* ``lock`` (``owner``, ``run_id``, ``lease_until``): the run that may work now. Taken with a
  conditional write; renewed every invocation; a lease that ran out (its owner died) can be
  taken over.
* A checkpoint is put in a transaction that checks the lock is still its owner's.
* The end of a run is one transaction: the job's own writes, then its checkpoint and the lock
  (the lock only if still ours) deleted.

A cancelled transaction means one of two things, told apart by its cancellation reasons: a
condition failed (the lock is another run's now, or a job's own condition): the job's ``busy``
error; or DynamoDB was busy (a conflicting transaction, throttling): :class:`StateContention`,
worth another try.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel

from chimpbridge.dal import aws

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        ConditionCheckTypeDef,
        TransactWriteItemTypeDef,
    )

DAY_SECONDS = 86_400
# Cancellation reasons that say nothing about our conditions: try the same transaction again.
_CONTENTION_REASONS = {
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
}

ModelT = TypeVar("ModelT", bound=BaseModel)


class StateContention(Exception):
    """DynamoDB cancelled a transaction for contention or throttling, not for a condition."""


class RunCheckpoint(Protocol):
    """What the lock mechanics read of a job's checkpoint model."""

    @property
    def run_id(self) -> str: ...

    @property
    def owner(self) -> str: ...

    def model_dump_json(self) -> str: ...


@dataclass(frozen=True)
class LockHolder:
    owner: str
    run_id: str
    lease_until: int


def _conditional_failure(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code")
    return code in {"ConditionalCheckFailedException", "TransactionCanceledException"}


class JobState:
    """One partition of the state table: its lock, checkpoints and end-of-run transaction."""

    busy: ClassVar[type[Exception]]
    """The domain error for "another run holds this" (a failed condition)."""
    work: ClassVar[str]
    """What the job does to its partition, as a busy message says it ("exported")."""

    def __init__(self, table: str, partition: str) -> None:
        self.table = table
        self.partition = partition

    def _key(self, sort_key: str) -> dict[str, AttributeValueTypeDef]:
        return {"pk": {"S": self.partition}, "sk": {"S": sort_key}}

    def _get(self, sort_key: str) -> dict[str, Any] | None:
        item = aws.dynamodb().get_item(TableName=self.table, Key=self._key(sort_key), ConsistentRead=True)
        return item.get("Item")

    # ------------------------------------------------------------ lock
    def acquire(self, owner: str, run_id: str, lease_seconds: int) -> None:
        """Take or renew the lock; the job's ``busy`` error if another live run holds it."""
        now = int(time.time())
        try:
            aws.dynamodb().put_item(
                TableName=self.table,
                Item={
                    **self._key("lock"),
                    "owner": {"S": owner},
                    "run_id": {"S": run_id},
                    "lease_until": {"N": str(now + lease_seconds)},
                    "expires_at": {"N": str(now + lease_seconds + DAY_SECONDS)},
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
            raise self.busy(f"{self.partition} is being {self.work} by {detail}") from None

    def holder(self) -> LockHolder | None:
        item = self._get("lock")
        if item is None:
            return None
        return LockHolder(item["owner"]["S"], item["run_id"]["S"], int(item["lease_until"]["N"]))

    def release(self, owner: str) -> None:
        """Drop the lock if it is still ours (an abort after a takeover must not free it)."""
        self._delete_if(self._lock_owned_by(owner))

    def _lock_owned_by(self, owner: str) -> ConditionCheckTypeDef:
        """The lock, on the condition that ``owner`` still holds it."""
        return {
            "TableName": self.table,
            "Key": self._key("lock"),
            "ConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {":owner": {"S": owner}},
        }

    def _delete_if(self, item: ConditionCheckTypeDef) -> None:
        """Delete ``item`` if its condition holds; one that no longer does is left alone."""
        try:
            aws.dynamodb().delete_item(**item)
        except ClientError as error:
            if not _conditional_failure(error):
                raise

    # ------------------------------------------------------------ checkpoints
    def _load_checkpoint(self, sort_key: str, model: type[ModelT]) -> ModelT | None:
        item = self._get(sort_key)
        return None if item is None else model.model_validate_json(item["data"]["S"])

    def _put_checkpoint(
        self, sort_key: str, checkpoint: RunCheckpoint, extra: dict[str, AttributeValueTypeDef] | None = None
    ) -> None:
        """Store ``checkpoint`` if its owner still holds the lock (else the job's ``busy`` error)."""
        lock_check: TransactWriteItemTypeDef = {"ConditionCheck": self._lock_owned_by(checkpoint.owner)}
        put: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table,
                "Item": {
                    **self._key(sort_key),
                    "run_id": {"S": checkpoint.run_id},
                    "data": {"S": checkpoint.model_dump_json()},
                    **(extra or {}),
                },
            }
        }
        self._transact([lock_check, put], "the lock was taken over; checkpoint not saved")

    # ------------------------------------------------------------ the end of a run
    def _run_record(
        self, run_id: str, attributes: dict[str, AttributeValueTypeDef], *, finished_at: int, keep_days: int
    ) -> dict[str, AttributeValueTypeDef]:
        """The item ``run#<run_id>`` that says the run is done, kept ``keep_days``."""
        return {
            **self._key(f"run#{run_id}"),
            **attributes,
            "finished_at": {"N": str(finished_at)},
            "expires_at": {"N": str(finished_at + keep_days * DAY_SECONDS)},
        }

    def _end_run(self, writes: list[TransactWriteItemTypeDef], checkpoint_key: str, owner: str, conflict: str) -> None:
        """The job's ``writes``, its checkpoint and the lock deleted: all or nothing."""
        drop_checkpoint: TransactWriteItemTypeDef = {
            "Delete": {"TableName": self.table, "Key": self._key(checkpoint_key)}
        }
        drop_lock: TransactWriteItemTypeDef = {"Delete": {**self._lock_owned_by(owner)}}
        self._transact([*writes, drop_checkpoint, drop_lock], conflict)

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
            raise self.busy(f"{self.partition}: {conflict}") from None
