"""``make invoke`` with an S3 "Object Created" event: the upload the event stands for.

An event names an object; on a fresh local stack the bucket is empty, so the file of the same
name next to the event file (``events/audience_import/contacts.csv`` for a key ending in
``contacts.csv``) is uploaded first, and the event gets that object's real ETag and size. An
object already there (uploaded with the AWS CLI, say) is used as it is.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError


def is_object_created(event: Any) -> bool:
    return isinstance(event, dict) and event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created"


def stage_upload(s3: Any, event: dict[str, Any], event_path: Path | None) -> tuple[dict[str, Any], str | None]:
    """The event as it would be for the object in the bucket (uploading the sample file if the
    object is missing), and a line saying what was done (None if nothing was)."""
    detail = event.get("detail") or {}
    bucket, key = (detail.get("bucket") or {}).get("name"), (detail.get("object") or {}).get("key")
    if not bucket or not key:
        return event, None
    said = None
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
        sample = None if event_path is None else event_path.parent / Path(key).name
        if sample is None or not sample.is_file():
            return event, None
        s3.put_object(Bucket=bucket, Key=key, Body=sample.read_bytes())
        head = s3.head_object(Bucket=bucket, Key=key)
        said = f"uploaded {sample} to s3://{bucket}/{key} (the upload this event stands for)"
    staged = copy.deepcopy(event)
    found = staged["detail"]["object"]
    found.update({"etag": str(head["ETag"]).strip('"'), "size": int(head["ContentLength"])})
    if head.get("VersionId"):
        found["version-id"] = head["VersionId"]
    return staged, said
