"""The audience import on the local stack, from the repository's template: a file uploaded under
imports/<audience>/ in the stack's bucket is imported as in AWS (the bucket's Object Created event,
the EventBridge rule, the state machine's loop), and `make invoke` with the sample event runs one."""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
import uuid
from typing import Any

import pytest

from sandbox.mailchimp.client import SandboxClient
from sandbox.stack.env_file import REPO_ROOT
from sandbox.stack.loop import invoke_until_done, waiting_while_busy
from sandbox.stack.pytest_plugin import RunningStack, StackFactory
from sandbox.stack.s3_uploads import stage_upload
from tests.support.audience_import import audience_members

pytestmark = pytest.mark.xdist_group("local-stack-import")

ROWS = 2_000
BAD_EVERY = 100  # 1% of the rows break the signup path's rules
WAIT_SECONDS = 300.0


@pytest.fixture(scope="module")
def stack(local_stack_factory: StackFactory) -> RunningStack:
    """The template, with the import holding all 10 connections (nothing else runs here)."""
    return local_stack_factory(parameters={"ImportMaxConnections": "10"})


def wait_for(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            return dict(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        except s3.exceptions.NoSuchKey:
            time.sleep(0.5)
    raise AssertionError(f"{key} did not appear")


def test_a_file_uploaded_to_the_bucket_is_imported_with_its_bad_rows_reported(stack: RunningStack) -> None:
    # Given an empty audience with one subscribed member, and a CSV of 2,000 rows naming her,
    # 1% of them bad
    assert stack.sandbox_url is not None
    sandbox = SandboxClient(stack.sandbox_url)
    list_id = uuid.uuid4().hex[:10]
    sandbox.seed(list_id, 0)
    lists = sandbox.marketing_sdk().lists
    lists.add_list_member(list_id, {"email_address": "row.0@example.org", "status": "subscribed"})
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["Email Address", "First Name", "Last Name"])
    bad_rows = set()
    for index in range(ROWS):
        email = f"row.{index}@example.org"
        if index % BAD_EVERY == BAD_EVERY - 1:
            email, bad_rows = f"row {index} at example.org", bad_rows | {index + 1}
        writer.writerow([email, f"First{index}", f"Last{index}"])
    s3, bucket = stack.client("s3"), stack.resource("ExportBucket").name
    key = f"imports/{list_id}/people.csv.gz"

    # When it is uploaded to the stack's bucket
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(text.getvalue().encode()))

    # Then the run ends with every valid row in the audience, the subscribed member untouched,
    # exactly the bad rows reported, and counts that add up
    summary = wait_for(s3, bucket, f"{key}.summary.json")
    counts = summary["counts"]
    assert summary["outcome"] == "imported"
    assert counts["rows"] == ROWS and counts["skipped_by_reason"] == {"invalid-email": len(bad_rows)}
    assert counts["created"] + counts["updated"] + counts["unchanged"] + counts["skipped"] == ROWS
    members = audience_members(sandbox, list_id)
    assert len(members) == ROWS - len(bad_rows)
    assert members["row.0@example.org"]["status"] == "subscribed"
    assert {m["status"] for e, m in members.items() if e != "row.0@example.org"} == {"pending"}
    results = gzip.decompress(s3.get_object(Bucket=bucket, Key=f"{key}.results.csv.gz")["Body"].read()).decode()
    skipped = {int(row["row"]) for row in csv.DictReader(io.StringIO(results)) if row["outcome"] == "skipped"}
    assert skipped == bad_rows


def test_make_invoke_runs_the_sample_upload_event_to_the_end(stack: RunningStack) -> None:
    # Given the sample event, whose file is next to it (make invoke uploads it first)
    path = REPO_ROOT / "events/audience_import/object-created.json"
    event, said = stage_upload(stack.client("s3"), json.loads(path.read_text()), path)
    assert said is None or "contacts.csv" in said

    # When it is invoked the way `make invoke` does it
    result = invoke_until_done(
        lambda job: waiting_while_busy(lambda: stack.invoke("AudienceImportFunction", job)), event
    )

    # Then the sample's rows are applied (or were, by the stack's own run of that upload)
    assert result["done"] is True
    assert result["result"]["outcome"] in ("imported", "already-imported")
    members = audience_members(SandboxClient(str(stack.sandbox_url)), "a1b2c3d4e5")
    assert members["grace.hopper@example.org"]["tags"] == ["cobol", "navy"]
