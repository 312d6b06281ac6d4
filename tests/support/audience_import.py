"""The audience import's world for tests: the template's bucket, state table and event bus on
moto (created from template.yaml under a stack name unique per test), the function pointed at
them and at a Mailchimp sandbox, and a driver that does what the state machine does (call the
function with the S3 event, then with the job, until it says done).

Files are uploaded to the bucket as a person would; the event handed to the function is the
"Object Created" event EventBridge would deliver for that upload (its ETag and size are S3's).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import uuid
from dataclasses import dataclass
from typing import Any

import boto3

from sandbox.mailchimp.client import SandboxClient
from sandbox.stack.env_file import REPO_ROOT
from tests.support.audience_world import AudienceWorld, each_member, new_list_id
from tests.support.aws import REGION
from tests.support.functions import LambdaContext, load_function

IMPORT_TIMEOUT_SECONDS = 900.0
EVENT_SAMPLE = REPO_ROOT / "events" / "audience_import" / "object-created.json"


def csv_bytes(header: list[str], rows: list[list[Any]], *, gzipped: bool = False) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    data = text.getvalue().encode()
    return gzip.compress(data) if gzipped else data


@dataclass
class ImportWorld(AudienceWorld):
    def __post_init__(self) -> None:
        created = self.create("import", ["StateTable", "ExportBucket", "EventBus"])
        self.sqs = boto3.client("sqs", endpoint_url=self.moto_url, region_name=REGION)
        self.bus = created["EventBus"].name
        self.tap_url = created["EventBus"].attributes["TapQueueUrl"]
        self.configure(
            MAILCHIMP_SECRET_ARN=self.secret_arn,
            MAILCHIMP_API_URL=self.sandbox.marketing_url,
            STATE_TABLE=self.table,
            IMPORT_BUCKET=self.bucket,
            EVENT_BUS_NAME=self.bus,
            IMPORT_MAX_CONNECTIONS="4",
            IMPORT_CHUNK_ROWS="50",
            MAILCHIMP_MAX_ATTEMPTS="3",
            MAILCHIMP_RETRY_BUDGET_SECONDS="2",
        )
        self.function = load_function("audience_import")

    def new_audience(self) -> str:
        """An empty audience in the sandbox (its merge fields: FNAME, LNAME)."""
        list_id = new_list_id()
        self.sandbox.seed(list_id, 0)
        return list_id

    # ------------------------------------------------------------ files and events
    def upload(self, list_id: str, name: str, body: bytes) -> dict[str, Any]:
        """Put a file under imports/<list_id>/ and return the event EventBridge delivers for it."""
        key = f"imports/{list_id}/{name}"
        answer = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        event = json.loads(EVENT_SAMPLE.read_text())
        event["detail"]["bucket"]["name"] = self.bucket
        event["detail"]["object"].update(
            {"key": key, "size": len(body), "etag": answer["ETag"].strip('"'), "version-id": answer.get("VersionId")}
        )
        event["resources"] = [f"arn:aws:s3:::{self.bucket}"]
        return dict(event)

    # ------------------------------------------------------------ driving the function
    def invoke(self, job: dict[str, Any], *, execution: str | None = None) -> dict[str, Any]:
        if execution is not None:
            job = {**job, "execution": execution}
        result: dict[str, Any] = self.function.lambda_handler(
            job, LambdaContext(timeout_seconds=IMPORT_TIMEOUT_SECONDS)
        )
        return result

    def run(self, event: dict[str, Any], *, execution: str | None = None, max_invocations: int = 500) -> dict[str, Any]:
        """Call the function until the job is done, as the state machine does."""
        execution = execution or uuid.uuid4().hex
        job = event
        for _ in range(max_invocations):
            job = self.invoke(job, execution=execution)
            if job["done"]:
                return job
        raise AssertionError(f"the import was not done after {max_invocations} invocations")

    # ------------------------------------------------------------ reading what landed
    def results(self, key: str) -> list[dict[str, str]]:
        text = gzip.decompress(self.body(key + ".results.csv.gz")).decode()
        return list(csv.DictReader(io.StringIO(text)))

    def summary(self, key: str) -> dict[str, Any]:
        return dict(json.loads(self.body(key + ".summary.json")))

    def published(self) -> list[dict[str, Any]]:
        """Events published on the bus so far (the local tap queue, drained)."""
        events: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.tap_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return events
            for message in messages:
                events.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.tap_url, ReceiptHandle=message["ReceiptHandle"])

    def state_items(self, list_id: str) -> dict[str, dict[str, Any]]:
        return {item["sk"]["S"]: item for item in self.table_items() if item["pk"]["S"] == f"import#{list_id}"}


def audience_members(sandbox: SandboxClient, list_id: str) -> dict[str, dict[str, Any]]:
    """Every member by lower-cased address: status, merge fields, tags (names), language."""
    return {
        member["email_address"].lower(): {
            "status": member["status"],
            "merge_fields": member["merge_fields"],
            "tags": sorted(tag["name"] for tag in member["tags"]),
            "language": member["language"],
        }
        for member in each_member(sandbox, list_id)
    }
