"""The export's items in the state table, one partition per export stream.

A stream is an audience exported in one format with one status selection; it has its own
watermark, so a CSV and a JSON Lines export of the same audience never steal each other's
changes. Items (``pk`` = ``export#<list>#<format>#<statuses>``):

* ``lock``: the run that may export now (dal/job_state.py: the lock the import shares).
* ``checkpoint``: where the running run stands (a :class:`Checkpoint`, as JSON). Written only
  while holding the lock (a transaction checks it).
* ``watermark``: ``last_changed`` up to which the stream is exported (exclusive).
* ``run#<run_id>``: a finished run, so a second start of the same schedule tick does nothing.

The end of a run is one transaction: watermark moved (only from the value the run started
from), run recorded, checkpoint and lock deleted (only if still ours). A failed condition (the
lock is another run's now, or the watermark moved) is :class:`ExportBusy`; contention is
:class:`~chimpbridge.dal.job_state.StateContention`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chimpbridge.dal.job_state import JobState
from chimpbridge.errors import ExportBusy
from chimpbridge.models.export import Checkpoint, ExportFormat, MemberStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

RUN_RECORD_DAYS = 35


def stream_key(list_id: str, fmt: ExportFormat, statuses: list[MemberStatus] | None) -> str:
    selection = "+".join(statuses) if statuses else "all"
    return f"export#{list_id}#{fmt}#{selection}"


class ExportState(JobState):
    busy = ExportBusy
    work = "exported"

    # ------------------------------------------------------------ runs and watermark
    def run_finished(self, run_id: str) -> bool:
        return self._get(f"run#{run_id}") is not None

    def watermark(self) -> int | None:
        item = self._get("watermark")
        return None if item is None else int(item["watermark"]["N"])

    # ------------------------------------------------------------ checkpoint
    def checkpoint(self) -> Checkpoint | None:
        return self._load_checkpoint("checkpoint", Checkpoint)

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store ``checkpoint`` if its owner still holds the lock (else :class:`ExportBusy`)."""
        self._put_checkpoint("checkpoint", checkpoint)

    def delete_checkpoint(self, run_id: str) -> None:
        """Drop the checkpoint if it is still ``run_id``'s."""
        self._delete_if(
            {
                "TableName": self.table,
                "Key": self._key("checkpoint"),
                "ConditionExpression": "run_id = :run",
                "ExpressionAttributeValues": {":run": {"S": run_id}},
            }
        )

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
        outcome: dict[str, AttributeValueTypeDef] = {
            "outcome": {"S": "exported"},
            "manifest_key": {"S": manifest_key},
            "rows": {"N": str(checkpoint.rows)},
        }
        record: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table,
                "Item": self._run_record(
                    checkpoint.run_id, outcome, finished_at=finished_at, keep_days=RUN_RECORD_DAYS
                ),
            }
        }
        self._end_run(
            [watermark, record],
            "checkpoint",
            checkpoint.owner,
            "the lock was taken over or the watermark moved; run not committed",
        )
