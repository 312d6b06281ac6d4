"""What the audience export's and the audience import's test worlds share: the template's
resources on moto (created from template.yaml under a stack name unique per test), the Marketing
API key as a secret, the function's environment pointed at them and at a Mailchimp sandbox, and
readers of the bucket, the state table and the sandbox's audiences."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from chimpbridge.dal import aws as dal_aws
from sandbox.mailchimp.client import SandboxClient
from sandbox.stack.env_file import REPO_ROOT
from sandbox.stack.resources import create_from_template
from tests.support.aws import REGION, forget_caches


def new_list_id() -> str:
    return uuid.uuid4().hex[:10]


def member_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def each_member(sandbox: SandboxClient, list_id: str, **filters: Any) -> Iterator[dict[str, Any]]:
    """Every member of the audience as the official SDK reads it, a page of 1,000 at a time
    (nothing changes meanwhile)."""
    client = sandbox.marketing_sdk()
    offset = 0
    while True:
        page = client.lists.get_list_members_info(list_id, count=1000, offset=offset, **filters)
        yield from page["members"]
        offset += 1000
        if offset >= page["total_items"]:
            return


@dataclass
class AudienceWorld:
    """The base of ExportWorld and ImportWorld; ``create`` builds it, from their ``__post_init__``."""

    moto_url: str
    sandbox: SandboxClient
    monkeypatch: pytest.MonkeyPatch
    bucket: str = field(init=False)
    table: str = field(init=False)
    secret_arn: str = field(init=False)
    function: Any = None

    def create(self, stack_prefix: str, resources: list[str]) -> dict[str, Any]:
        """The template's ``resources`` (StateTable and ExportBucket among them) and the secret;
        returns what was created, by logical id."""
        self.s3 = boto3.client("s3", endpoint_url=self.moto_url, region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", endpoint_url=self.moto_url, region_name=REGION)
        created = create_from_template(
            REPO_ROOT / "template.yaml",
            self.moto_url,
            resources,
            stack_name=f"{stack_prefix}-{uuid.uuid4().hex[:10]}",
        )
        self.table, self.bucket = created["StateTable"].name, created["ExportBucket"].name
        secrets = boto3.client("secretsmanager", endpoint_url=self.moto_url, region_name=REGION)
        self.secret_arn = secrets.create_secret(
            Name=f"test/{uuid.uuid4()}", SecretString=json.dumps({"api_key": self.sandbox.marketing_api_key})
        )["ARN"]
        return created

    def configure(self, **variables: str) -> None:
        for name, value in variables.items():
            self.monkeypatch.setenv(name, value)
        forget_caches()
        dal_aws.clear()

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def body(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def table_items(self) -> list[dict[str, Any]]:
        return list(self.dynamodb.scan(TableName=self.table)["Items"])
