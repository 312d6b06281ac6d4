"""The audience export's world for tests: the template's export bucket and state table on moto
(created from template.yaml under a stack name unique per test), the function pointed at them
and at a Mailchimp sandbox, and a driver that does what the state machine does (call the
function with the job until it says done).

Readers turn what landed in S3 back into rows, so tests compare it with the sandbox as the
official SDK sees it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
from dataclasses import dataclass
from typing import Any

from sandbox.mailchimp.client import SandboxClient
from tests.support.audience_world import AudienceWorld, each_member, member_hash
from tests.support.functions import LambdaContext, load_function

EXPORT_TIMEOUT_SECONDS = 900.0
AUDIENCE_SIZE = 25_000
EMAIL_AND_STATUS = ["members.email_address", "members.status", "total_items"]


def wait_for_next_second() -> None:
    """``last_changed`` has second resolution and a run excludes the second it starts in:
    changes made just before a run must be a second older than its start."""
    time.sleep(1.05 - (time.time() % 1.0) + 0.05)


@dataclass
class ExportWorld(AudienceWorld):
    def __post_init__(self) -> None:
        self.create("export", ["StateTable", "ExportBucket"])
        self.configure(
            MAILCHIMP_SECRET_ARN=self.secret_arn,
            MAILCHIMP_API_URL=self.sandbox.marketing_url,
            STATE_TABLE=self.table,
            EXPORT_BUCKET=self.bucket,
            EXPORT_SETTLE_SECONDS="0",
            EXPORT_CONCURRENCY="4",
            # A page can take longer than production's 10 s on a loaded test machine; interrupted
            # runs are tested with injected faults, not left to the load.
            MAILCHIMP_READ_TIMEOUT_SECONDS="30",
        )
        self.function = load_function("audience_export")

    # ------------------------------------------------------------ driving the function
    def invoke(self, job: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.function.lambda_handler(
            job, LambdaContext(timeout_seconds=EXPORT_TIMEOUT_SECONDS)
        )
        return result

    def run(self, job: dict[str, Any], *, max_invocations: int = 200) -> tuple[dict[str, Any], int]:
        """Call the function until the job is done, as the state machine does; returns the
        last result and how many invocations it took."""
        for invocation in range(1, max_invocations + 1):
            job = self.invoke(job)
            if job["done"]:
                return job, invocation
        raise AssertionError(f"the export was not done after {max_invocations} invocations")

    # ------------------------------------------------------------ reading what landed
    def pending_uploads(self) -> list[str]:
        uploads = self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        return [upload["Key"] for upload in uploads]

    def manifest(self, key: str) -> dict[str, Any]:
        return dict(json.loads(self.body(key)))

    def only_manifest(self, list_id: str) -> dict[str, Any]:
        keys = [key for key in self.keys(f"mailchimp/audiences/{list_id}/") if "/manifests/" in key]
        assert len(keys) == 1, keys
        return self.manifest(keys[0])

    def csv_rows(self, key: str) -> tuple[list[str], list[dict[str, str]]]:
        text = gzip.decompress(self.body(key)).decode()
        reader = csv.reader(io.StringIO(text))
        header = next(reader)
        return header, [dict(zip(header, row, strict=True)) for row in reader]

    def jsonl_members(self, key: str) -> list[dict[str, Any]]:
        text = gzip.decompress(self.body(key)).decode()
        return [json.loads(line) for line in text.splitlines()]

    def state_items(self, list_id: str) -> dict[str, dict[str, Any]]:
        items = self.table_items()
        return {item["sk"]["S"]: item for item in items if item["pk"]["S"].startswith(f"export#{list_id}#")}

    def checkpoint(self, list_id: str) -> dict[str, Any]:
        return dict(json.loads(self.state_items(list_id)["checkpoint"]["data"]["S"]))

    def lease_left(self, list_id: str) -> float:
        """Seconds the stream's lock lease still runs."""
        return int(self.state_items(list_id)["lock"]["lease_until"]["N"]) - time.time()

    def expire_lease(self, list_id: str) -> None:
        """What a lease looks like once its owner stopped renewing it long enough ago."""
        lock = self.state_items(list_id)["lock"]
        lock["lease_until"] = {"N": str(int(time.time()) - 1)}
        self.dynamodb.put_item(TableName=self.table, Item=lock)

    def move_watermark(self, list_id: str, watermark: int) -> None:
        """Another run of the stream committed meanwhile (what only a lost lock allows)."""
        (pk,) = {item["pk"]["S"] for item in self.state_items(list_id).values()}
        self.dynamodb.put_item(
            TableName=self.table,
            Item={"pk": {"S": pk}, "sk": {"S": "watermark"}, "watermark": {"N": str(watermark)}},
        )


def job(list_id: str, **fields: Any) -> dict[str, Any]:
    """An export job as the schedule sends it."""
    return {"audiences": [list_id], **fields}


def sandbox_members(sandbox: SandboxClient, list_id: str, **filters: Any) -> dict[str, dict[str, Any]]:
    """Every member of the audience, by email, read with the official SDK (one page at a time,
    nothing changes meanwhile)."""
    return {member["email_address"]: member for member in each_member(sandbox, list_id, **filters)}


def change_members(sandbox: SandboxClient, list_id: str, emails: list[str], *, note: str) -> None:
    """Change each member (a merge field), as people editing their profile would."""
    client = sandbox.marketing_sdk()
    for email in emails:
        client.lists.update_list_member(list_id, member_hash(email), {"merge_fields": {"LNAME": note}})
