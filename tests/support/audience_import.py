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
import hashlib
import io
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from chimpbridge.dal import aws as dal_aws
from sandbox.mailchimp.client import SandboxClient
from sandbox.stack.env_file import REPO_ROOT
from sandbox.stack.resources import create_from_template
from tests.support.aws import REGION, forget_caches
from tests.support.functions import LambdaContext, load_function

IMPORT_TIMEOUT_SECONDS = 900.0
EVENT_SAMPLE = REPO_ROOT / "events" / "audience_import" / "object-created.json"


def new_list_id() -> str:
    return uuid.uuid4().hex[:10]


def member_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def csv_bytes(header: list[str], rows: list[list[Any]], *, gzipped: bool = False) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    data = text.getvalue().encode()
    return gzip.compress(data) if gzipped else data


@dataclass
class ImportWorld:
    moto_url: str
    sandbox: SandboxClient
    monkeypatch: pytest.MonkeyPatch
    bucket: str = field(init=False)
    table: str = field(init=False)
    function: Any = None

    def __post_init__(self) -> None:
        self.s3 = boto3.client("s3", endpoint_url=self.moto_url, region_name=REGION)
        self.sqs = boto3.client("sqs", endpoint_url=self.moto_url, region_name=REGION)
        created = create_from_template(
            REPO_ROOT / "template.yaml",
            self.moto_url,
            ["StateTable", "ExportBucket", "EventBus"],
            stack_name=f"import-{uuid.uuid4().hex[:10]}",
        )
        self.table, self.bucket = created["StateTable"].name, created["ExportBucket"].name
        self.bus = created["EventBus"].name
        self.tap_url = created["EventBus"].attributes["TapQueueUrl"]
        secrets = boto3.client("secretsmanager", endpoint_url=self.moto_url, region_name=REGION)
        arn = secrets.create_secret(
            Name=f"test/{uuid.uuid4()}", SecretString=json.dumps({"api_key": self.sandbox.marketing_api_key})
        )["ARN"]
        self.configure(
            MAILCHIMP_SECRET_ARN=arn,
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

    def configure(self, **variables: str) -> None:
        for name, value in variables.items():
            self.monkeypatch.setenv(name, value)
        forget_caches()
        dal_aws.clear()

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
    def body(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def results(self, key: str) -> list[dict[str, str]]:
        text = gzip.decompress(self.body(key + ".results.csv.gz")).decode()
        return list(csv.DictReader(io.StringIO(text)))

    def summary(self, key: str) -> dict[str, Any]:
        return dict(json.loads(self.body(key + ".summary.json")))

    def object_keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

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
        dynamodb = boto3.client("dynamodb", endpoint_url=self.moto_url, region_name=REGION)
        items = dynamodb.scan(TableName=self.table)["Items"]
        return {item["sk"]["S"]: item for item in items if item["pk"]["S"] == f"import#{list_id}"}


def audience_members(sandbox: SandboxClient, list_id: str) -> dict[str, dict[str, Any]]:
    """Every member by lower-cased address: status, merge fields, tags (names), language."""
    client = sandbox.marketing_sdk()
    members: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        page = client.lists.get_list_members_info(list_id, count=1000, offset=offset)
        for member in page["members"]:
            members[member["email_address"].lower()] = {
                "status": member["status"],
                "merge_fields": member["merge_fields"],
                "tags": sorted(tag["name"] for tag in member["tags"]),
                "language": member["language"],
            }
        offset += 1000
        if offset >= page["total_items"]:
            return members
