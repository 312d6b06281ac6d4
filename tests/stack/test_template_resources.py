"""Some of a template's resources on their own, for tests and benchmarks that need a table or a
bucket exactly as the template declares it (and not a hand-written copy that drifts)."""

from __future__ import annotations

import uuid

import boto3
import pytest

from sandbox.stack.env_file import REPO_ROOT
from sandbox.stack.resources import create_from_template
from tests.support.aws import REGION

TEMPLATE = REPO_ROOT / "template.yaml"


def test_the_named_resources_are_created_as_the_template_declares_them(aws_env: str) -> None:
    # Given a stack name of this test's own
    stack_name = f"t{uuid.uuid4().hex[:10]}"

    # When the export's table and bucket are created from the repository's template
    created = create_from_template(TEMPLATE, aws_env, ["StateTable", "ExportBucket"], stack_name=stack_name)

    # Then they carry the template's key schema, TTL and versioning, under the stack's names
    table, bucket = created["StateTable"].name, created["ExportBucket"].name
    assert (table, bucket) == (f"{stack_name}-StateTable", f"{stack_name}-exportbucket")
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_env, region_name=REGION)
    description = dynamodb.describe_table(TableName=table)["Table"]
    assert [(key["AttributeName"], key["KeyType"]) for key in description["KeySchema"]] == [
        ("pk", "HASH"),
        ("sk", "RANGE"),
    ]
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"
    s3 = boto3.client("s3", endpoint_url=aws_env, region_name=REGION)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    # and nothing else of the template was created
    assert not any(
        stack_name in url
        for url in boto3.client("sqs", endpoint_url=aws_env, region_name=REGION).list_queues().get("QueueUrls", [])
    )


def test_a_resource_moto_does_not_hold_is_refused_by_name(aws_env: str) -> None:
    with pytest.raises(KeyError, match="AudienceExportFunction"):
        create_from_template(TEMPLATE, aws_env, ["AudienceExportFunction"], stack_name="t-refused")
