"""The audience import's items in the state table, one partition per audience.

Items (``pk`` = ``import#<list_id>``):

* ``lock``: the run that may import into the audience now (dal/job_state.py: the lock the export
  shares): one at a time per audience, so two files never split the connection budget between
  them.
* ``checkpoint#<run_id>``: where a run stands (an :class:`ImportCheckpoint`, as JSON). Written
  only while holding the lock (a transaction checks it). One per run, so a run that lost the
  lock to another file resumes where it stood once that one is done.
* ``run#<run_id>``: a finished run. The run id is made of the audience and the object's ETag,
  so the same content uploaded again finds it and does nothing.

The end of a run is one transaction: run recorded, checkpoint and lock deleted (the lock only if
still ours). A transaction cancelled for a failed condition is :class:`ImportBusy`; one
cancelled for contention or throttling is :class:`~chimpbridge.dal.job_state.StateContention`,
worth another try.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chimpbridge.dal import aws
from chimpbridge.dal.job_state import DAY_SECONDS, JobState
from chimpbridge.errors import ImportBusy
from chimpbridge.models.audience_import import ImportCheckpoint

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

# Long enough that a file uploaded again months later is still recognised.
RUN_RECORD_DAYS = 400
# Checkpoints of runs whose execution was lost entirely expire on their own.
CHECKPOINT_DAYS = 14


@dataclass(frozen=True)
class FinishedRun:
    run_id: str
    summary_key: str
    results_key: str
    rows: int


class ImportState(JobState):
    busy = ImportBusy
    work = "imported into"

    def __init__(self, table: str, list_id: str) -> None:
        super().__init__(table, f"import#{list_id}")

    # ------------------------------------------------------------ finished runs
    def finished(self, run_id: str) -> FinishedRun | None:
        item = self._get(f"run#{run_id}")
        if item is None:
            return None
        return FinishedRun(run_id, item["summary_key"]["S"], item["results_key"]["S"], int(item["rows"]["N"]))

    # ------------------------------------------------------------ checkpoints
    def checkpoint(self, run_id: str) -> ImportCheckpoint | None:
        return self._load_checkpoint(f"checkpoint#{run_id}", ImportCheckpoint)

    def save_checkpoint(self, checkpoint: ImportCheckpoint) -> None:
        """Store ``checkpoint`` if its owner still holds the lock (else :class:`ImportBusy`)."""
        expires_at = int(time.time()) + CHECKPOINT_DAYS * DAY_SECONDS
        self._put_checkpoint(f"checkpoint#{checkpoint.run_id}", checkpoint, {"expires_at": {"N": str(expires_at)}})

    def delete_checkpoint(self, run_id: str) -> None:
        aws.dynamodb().delete_item(TableName=self.table, Key=self._key(f"checkpoint#{run_id}"))

    # ------------------------------------------------------------ the end of a run
    def commit(self, checkpoint: ImportCheckpoint, *, summary_key: str, results_key: str, finished_at: int) -> None:
        """Record the run, drop its checkpoint and the lock: all or nothing."""
        outcome: dict[str, AttributeValueTypeDef] = {
            "summary_key": {"S": summary_key},
            "results_key": {"S": results_key},
            "object_key": {"S": checkpoint.object.key},
            "etag": {"S": checkpoint.object.etag},
            "rows": {"N": str(checkpoint.counts.rows)},
        }
        record: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table,
                "Item": self._run_record(
                    checkpoint.run_id, outcome, finished_at=finished_at, keep_days=RUN_RECORD_DAYS
                ),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        self._end_run(
            [record], f"checkpoint#{checkpoint.run_id}", checkpoint.owner, "the lock was taken over; run not committed"
        )
