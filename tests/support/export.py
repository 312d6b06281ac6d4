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
import hashlib
import io
import json
import time
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

EXPORT_TIMEOUT_SECONDS = 900.0
AUDIENCE_SIZE = 25_000
EMAIL_AND_STATUS = ["members.email_address", "members.status", "total_items"]


def new_list_id() -> str:
    return uuid.uuid4().hex[:10]


def wait_for_next_second() -> None:
    """``last_changed`` has second resolution and a run excludes the second it starts in:
    changes made just before a run must be a second older than its start."""
    time.sleep(1.05 - (time.time() % 1.0) + 0.05)


@dataclass
class ExportWorld:
    moto_url: str
    sandbox: SandboxClient
    monkeypatch: pytest.MonkeyPatch
    bucket: str = field(init=False)
    table: str = field(init=False)
    function: Any = None

    def __post_init__(self) -> None:
        self.s3 = boto3.client("s3", endpoint_url=self.moto_url, region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", endpoint_url=self.moto_url, region_name=REGION)
        created = create_from_template(
            REPO_ROOT / "template.yaml",
            self.moto_url,
            ["StateTable", "ExportBucket"],
            stack_name=f"export-{uuid.uuid4().hex[:10]}",
        )
        self.table, self.bucket = created["StateTable"].name, created["ExportBucket"].name
        secrets = boto3.client("secretsmanager", endpoint_url=self.moto_url, region_name=REGION)
        arn = secrets.create_secret(
            Name=f"test/{uuid.uuid4()}", SecretString=json.dumps({"api_key": self.sandbox.marketing_api_key})
        )["ARN"]
        self.configure(
            MAILCHIMP_SECRET_ARN=arn,
            MAILCHIMP_API_URL=self.sandbox.marketing_url,
            STATE_TABLE=self.table,
            EXPORT_BUCKET=self.bucket,
            EXPORT_SETTLE_SECONDS="0",
            EXPORT_CONCURRENCY="4",
        )
        self.function = load_function("audience_export")

    def configure(self, **variables: str) -> None:
        for name, value in variables.items():
            self.monkeypatch.setenv(name, value)
        forget_caches()
        dal_aws.clear()

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
    def keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def pending_uploads(self) -> list[str]:
        uploads = self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        return [upload["Key"] for upload in uploads]

    def body(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

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
        items = self.dynamodb.scan(TableName=self.table)["Items"]
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
    client = sandbox.marketing_sdk()
    members: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        page = client.lists.get_list_members_info(list_id, count=1000, offset=offset, **filters)
        for member in page["members"]:
            members[member["email_address"]] = member
        offset += 1000
        if offset >= page["total_items"]:
            return members


def change_members(sandbox: SandboxClient, list_id: str, emails: list[str], *, note: str) -> None:
    """Change each member (a merge field), as people editing their profile would."""
    client = sandbox.marketing_sdk()
    for email in emails:
        member_hash = hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()
        client.lists.update_list_member(list_id, member_hash, {"merge_fields": {"LNAME": note}})
