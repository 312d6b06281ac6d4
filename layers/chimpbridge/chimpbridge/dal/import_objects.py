"""The audience import's S3 objects: the file it reads (streamed, never held whole), the report
parts it stages between checkpoints, and the report and summary it writes next to the file.

The file is read by version id (versioned bucket) or else on the condition that its ETag is
still the run's: a file replaced under a running import fails the read instead of mixing two
files' rows into one run.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chimpbridge.dal import aws
from chimpbridge.errors import ImportFailed
from chimpbridge.models.audience_import import ImportObject

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, ObjectIdentifierTypeDef

STAGING_PREFIX = "import-staging"
# S3's smallest part but the last; parts of the report are gathered to this size.
_PART_BYTES = 8 * 1024 * 1024


class _BodyReader(io.RawIOBase):
    """An S3 streaming body as a raw stream, so the standard buffered and text wrappers apply."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._body.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self._body.close()
        super().close()


def open_object(source: ImportObject) -> IO[bytes]:
    """The object's bytes as a buffered binary stream (read as they arrive). A file that is gone
    or was replaced is :class:`ImportFailed`: no retry brings the run's content back."""
    request: dict[str, Any] = {"Bucket": source.bucket, "Key": source.key}
    if source.version_id:
        request["VersionId"] = source.version_id
    else:
        request["IfMatch"] = f'"{source.etag}"'
    try:
        response = aws.s3().get_object(**request)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in ("PreconditionFailed", "412"):
            raise ImportFailed(
                "the file was replaced while it was imported (the new upload is a run of its own)"
            ) from None
        if code in ("NoSuchKey", "NoSuchVersion", "404"):
            raise ImportFailed("the file is gone") from None
        raise
    return io.BufferedReader(_BodyReader(response["Body"]), buffer_size=256 * 1024)


def part_key(run_id: str, number: int) -> str:
    return f"{STAGING_PREFIX}/{run_id}/part-{number:06d}.csv.gz"


def put_part(bucket: str, run_id: str, number: int, data: bytes) -> None:
    """One report part (a gzip member). Written again with the same number by a retry, so a
    retried chunk never adds a second copy of its rows."""
    aws.s3().put_object(Bucket=bucket, Key=part_key(run_id, number), Body=data)


def put_json(bucket: str, key: str, text: str) -> None:
    aws.s3().put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType="application/json")


def concatenate(bucket: str, head: bytes, run_id: str, parts: int, key: str) -> None:
    """``head`` then the run's parts, in order, as one object at ``key`` (gzip members one after
    another are one gzip file). Memory stays at one upload part, whatever the report's size."""
    s3 = aws.s3()
    buffer = bytearray(head)
    upload_id: str | None = None
    uploaded: list[CompletedPartTypeDef] = []
    try:
        for data in _parts(bucket, run_id, parts):
            buffer += data
            if len(buffer) >= _PART_BYTES:
                if upload_id is None:
                    upload_id = s3.create_multipart_upload(
                        Bucket=bucket, Key=key, ContentType="text/csv", ContentEncoding="gzip"
                    )["UploadId"]
                number = len(uploaded) + 1
                etag = s3.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(buffer)
                )["ETag"]
                uploaded.append({"PartNumber": number, "ETag": etag})
                buffer.clear()
        if upload_id is None:
            s3.put_object(Bucket=bucket, Key=key, Body=bytes(buffer), ContentType="text/csv", ContentEncoding="gzip")
            return
        if buffer:
            number = len(uploaded) + 1
            etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(buffer))[
                "ETag"
            ]
            uploaded.append({"PartNumber": number, "ETag": etag})
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": uploaded})
    except BaseException:
        if upload_id is not None:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise


def _parts(bucket: str, run_id: str, parts: int) -> Iterable[bytes]:
    s3 = aws.s3()
    for number in range(1, parts + 1):
        yield s3.get_object(Bucket=bucket, Key=part_key(run_id, number))["Body"].read()


def delete_parts(bucket: str, run_id: str, parts: int) -> bool:
    """Remove the run's staged parts; False if some could not be (they expire with the staging
    prefix, so the run does not fail for them)."""
    keys: list[ObjectIdentifierTypeDef] = [{"Key": part_key(run_id, number)} for number in range(1, parts + 1)]
    s3 = aws.s3()
    try:
        for start in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})
    except (ClientError, BotoCoreError):
        return False
    return True
