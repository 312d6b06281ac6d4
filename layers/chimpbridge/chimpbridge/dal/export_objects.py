"""The export's objects in S3, one bucket: the gzip stream (a multipart upload, or one object
put whole), the staging tails a stream parks between invocations, and the manifest.

The export (``chimpbridge.logic.export``) sees a store of objects by key, :class:`ExportObjects`,
and never S3 itself: what a stream is, when it is complete and what a run leaves behind are
its decisions; the requests, their checksums and S3's error codes are this module's. Tests that
need no S3 give the export an in-memory store (``tests/support/export_objects.py``).

What S3 answers that the export must tell apart becomes a result here: an object that is not
there is ``None`` (:meth:`ExportObjects.head`), an upload that is gone (completed or aborted
before) is :class:`UploadGone`, and aborting an upload that is gone already is done.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from chimpbridge.dal import aws
from chimpbridge.models.export import UploadedPart

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

READ_CHUNK = 4 * 1024 * 1024
_NOT_THERE = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True)
class ObjectHead:
    """What the store knows of an object without reading it."""

    size: int
    metadata: dict[str, str]
    version_id: str | None


@dataclass(frozen=True)
class StoredObject:
    """An object just written: its ETag (a part's name in a multipart upload) and version."""

    etag: str
    version_id: str | None


class UploadGone(Exception):
    """The multipart upload is no longer there: completed (or aborted) before."""


class ExportObjects(Protocol):
    """Objects by key in the export bucket (:class:`S3ExportObjects`; in-memory in tests)."""

    @property
    def bucket(self) -> str: ...

    def prepare(self) -> None:
        """Get ready to answer (build the client), so the first request does not wait for it."""

    def start_upload(self, key: str, *, content_type: str, metadata: dict[str, str]) -> str:
        """Start a multipart upload to ``key``; returns its id."""

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes, *, sha256: str) -> str:
        """Upload part ``number`` (``sha256``: base64, checked by the store); returns its ETag."""

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[UploadedPart]) -> str | None:
        """Join ``parts`` into the object; returns its version. :class:`UploadGone` if the upload is."""

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Drop the upload and its parts; one that is gone already is fine."""

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        sha256: str | None = None,
    ) -> StoredObject:
        """Write the object whole (``sha256``: base64, checked by the store when given)."""

    def read(self, key: str, version_id: str | None = None) -> Iterator[bytes]:
        """The object's bytes (that version, if given), in chunks."""

    def head(self, key: str) -> ObjectHead | None:
        """The object at ``key``, or None if there is none."""

    def delete(self, key: str, version_id: str | None = None) -> None:
        """Remove the object (that version, if given); a key with nothing there is fine."""


def _code(error: ClientError) -> str | None:
    return error.response.get("Error", {}).get("Code")


class S3ExportObjects:
    """:class:`ExportObjects` on an S3 bucket (versioned or not), every part SHA-256 checked."""

    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    @property
    def bucket(self) -> str:
        return self._bucket

    def prepare(self) -> None:
        aws.s3()

    def start_upload(self, key: str, *, content_type: str, metadata: dict[str, str]) -> str:
        upload = aws.s3().create_multipart_upload(
            Bucket=self._bucket, Key=key, ContentType=content_type, Metadata=metadata, ChecksumAlgorithm="SHA256"
        )
        return upload["UploadId"]

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes, *, sha256: str) -> str:
        response = aws.s3().upload_part(
            Bucket=self._bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=sha256,
        )
        return response["ETag"]

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[UploadedPart]) -> str | None:
        listed: list[CompletedPartTypeDef] = [
            {"PartNumber": part.number, "ETag": part.etag, "ChecksumSHA256": part.sha256} for part in parts
        ]
        try:
            completed = aws.s3().complete_multipart_upload(
                Bucket=self._bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed}
            )
        except ClientError as error:
            if _code(error) == "NoSuchUpload":
                raise UploadGone(f"the upload of {key} is gone") from None
            raise
        return completed.get("VersionId")

    def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            aws.s3().abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except ClientError as error:
            if _code(error) != "NoSuchUpload":
                raise

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        sha256: str | None = None,
    ) -> StoredObject:
        # Only what is given is sent: a staging tail is a bare put, as it always was.
        extra: dict[str, Any] = {}
        if content_type is not None:
            extra["ContentType"] = content_type
        if metadata is not None:
            extra["Metadata"] = metadata
        if sha256 is not None:
            extra["ChecksumSHA256"] = sha256
        put = aws.s3().put_object(Bucket=self._bucket, Key=key, Body=data, **extra)
        return StoredObject(etag=put["ETag"], version_id=put.get("VersionId"))

    def read(self, key: str, version_id: str | None = None) -> Iterator[bytes]:
        if version_id:
            body = aws.s3().get_object(Bucket=self._bucket, Key=key, VersionId=version_id)["Body"]
        else:
            body = aws.s3().get_object(Bucket=self._bucket, Key=key)["Body"]
        yield from body.iter_chunks(READ_CHUNK)

    def head(self, key: str) -> ObjectHead | None:
        try:
            head = aws.s3().head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if _code(error) in _NOT_THERE:
                return None
            raise
        return ObjectHead(
            size=head.get("ContentLength", 0), metadata=head.get("Metadata", {}), version_id=head.get("VersionId")
        )

    def delete(self, key: str, version_id: str | None = None) -> None:
        if version_id:
            aws.s3().delete_object(Bucket=self._bucket, Key=key, VersionId=version_id)
        else:
            aws.s3().delete_object(Bucket=self._bucket, Key=key)
