"""The export's gzip stream on S3 (moto): parts of at least 5 MiB, one valid gzip file, the
same bytes whether written in one invocation or suspended and resumed across several."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import uuid

import boto3
import pytest

from chimpbridge.dal import aws as dal_aws
from chimpbridge.dal.export_objects import S3ExportObjects
from chimpbridge.logic.export.writer import (
    MIB,
    CompletedObject,
    MultipartGzipWriter,
    UploadLost,
    complete_upload,
    create_upload,
)
from chimpbridge.models.export import WriterState
from tests.support.aws import REGION
from tests.support.aws_faults import AwsFaults, s3_error

PART_SIZE = 5 * MIB
NO_SUCH_UPLOAD = s3_error(404, "NoSuchUpload", "The specified upload does not exist.")


@pytest.fixture
def objects(aws_env: str) -> S3ExportObjects:
    name = f"writer-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=aws_env, region_name=REGION).create_bucket(Bucket=name)
    dal_aws.clear()
    return S3ExportObjects(name)


def s3(aws_env: str):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=aws_env, region_name=REGION)


def finish(writer: MultipartGzipWriter) -> CompletedObject:
    """Seal the stream and complete its upload, as the export does once it has checkpointed."""
    writer.seal()
    return complete_upload(writer.objects, writer.key, writer.state, run_id="test", sha256=writer.sha256)


def chunks() -> list[bytes]:
    """12 MiB that gzip cannot shrink (so parts fill up), in pieces the size of a page of lines."""
    return [os.urandom(256 * 1024) for _ in range(48)]


def test_a_large_stream_becomes_one_gzip_object_of_several_parts(aws_env: str, objects: S3ExportObjects) -> None:
    # Given a writer fed 12 MiB, cutting a part whenever one is due
    state = create_upload(objects, "x/one.gz", run_id="test", content_type="application/gzip", metadata={})
    writer = MultipartGzipWriter.open(objects, "x/one.gz", state, PART_SIZE)
    data = chunks()
    for chunk in data:
        writer.write(chunk)
        if writer.part_due():
            writer.cut_part()

    # When it finishes
    completed = finish(writer)

    # Then the object is one gzip file holding exactly the input, in parts of >= 5 MiB but the last
    body = s3(aws_env).get_object(Bucket=objects.bucket, Key="x/one.gz")["Body"].read()
    assert gzip.decompress(body) == b"".join(data)
    assert (completed.bytes, completed.sha256) == (len(body), hashlib.sha256(body).hexdigest())
    sizes = [part.size for part in writer.state.parts]
    assert len(sizes) >= 3 and all(size >= PART_SIZE for size in sizes[:-1])


def test_a_stream_suspended_across_invocations_is_the_same_gzip_file(aws_env: str, objects: S3ExportObjects) -> None:
    # Given a stream written by five "invocations", each suspending (tail parked) and the next
    # one reopening it from the saved state
    state = create_upload(objects, "x/resumed.gz", run_id="test", content_type="application/gzip", metadata={})
    data = chunks()
    for invocation, start in enumerate(range(0, len(data), 10)):
        writer = MultipartGzipWriter.open(objects, "x/resumed.gz", state, PART_SIZE)
        for chunk in data[start : start + 10]:
            writer.write(chunk)
            if writer.part_due():
                writer.cut_part()
        if start + 10 < len(data):
            writer.suspend(f"mailchimp/_staging/test/tail-{invocation}")
            state = writer.state

    # When the last invocation finishes it
    completed = finish(writer)

    # Then it is one valid gzip file of exactly the input, and its SHA-256 (read back) is right
    body = s3(aws_env).get_object(Bucket=objects.bucket, Key="x/resumed.gz")["Body"].read()
    with gzip.GzipFile(fileobj=io.BytesIO(body)) as unzipped:
        assert unzipped.read() == b"".join(data)
    assert completed.sha256 == hashlib.sha256(body).hexdigest()
    assert all(part.size >= PART_SIZE for part in writer.state.parts[:-1])


def test_an_empty_stream_is_a_valid_empty_gzip_file(aws_env: str, objects: S3ExportObjects) -> None:
    state = create_upload(objects, "x/empty.gz", run_id="test", content_type="application/gzip", metadata={})
    finish(MultipartGzipWriter.open(objects, "x/empty.gz", state, PART_SIZE))
    body = s3(aws_env).get_object(Bucket=objects.bucket, Key="x/empty.gz")["Body"].read()
    assert gzip.decompress(body) == b""


def test_an_aborted_upload_leaves_nothing(aws_env: str, objects: S3ExportObjects) -> None:
    # Given a stream with a part uploaded
    state = create_upload(objects, "x/aborted.gz", run_id="test", content_type="application/gzip", metadata={})
    writer = MultipartGzipWriter.open(objects, "x/aborted.gz", state, PART_SIZE)
    for chunk in chunks()[:24]:
        writer.write(chunk)
    writer.cut_part()

    # When the upload is aborted
    assert state.upload_id is not None
    objects.abort_upload("x/aborted.gz", state.upload_id)

    # Then there is no object and no upload in progress
    client = s3(aws_env)
    assert client.list_objects_v2(Bucket=objects.bucket).get("KeyCount") == 0
    assert client.list_multipart_uploads(Bucket=objects.bucket).get("Uploads", []) == []


def test_a_completion_s3_has_forgotten_is_proven_by_the_object_of_the_run(
    aws_env: str, objects: S3ExportObjects, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stream completed once, and S3 then answering its completion with NoSuchUpload
    state = create_upload(objects, "x/twice.gz", run_id="run-1", content_type="application/gzip", metadata={})
    writer = MultipartGzipWriter.open(objects, "x/twice.gz", state, PART_SIZE)
    writer.write(b"members\n")
    writer.seal()
    first = complete_upload(objects, "x/twice.gz", writer.state, run_id="run-1", sha256=None)
    with AwsFaults(aws_env) as faults:
        faults.fail("CompleteMultipartUpload", NO_SUCH_UPLOAD, times=2)
        monkeypatch.setenv("AWS_ENDPOINT_URL", faults.url)
        dal_aws.clear()

        # When it is completed again, as a retry after a death does
        again = complete_upload(objects, "x/twice.gz", writer.state, run_id="run-1", sha256=None)

        # Then the object of that run is found; another run's object would not do
        with pytest.raises(UploadLost):
            complete_upload(objects, "x/twice.gz", writer.state, run_id="run-2", sha256=None)
    dal_aws.clear()
    assert (again.bytes, again.sha256) == (first.bytes, first.sha256)
    assert faults.failed == ["CompleteMultipartUpload"] * 2


def test_a_stream_that_ends_before_its_first_part_is_put_whole_without_an_upload(
    aws_env: str, objects: S3ExportObjects
) -> None:
    # Given a new stream (no upload started) that stays under the part size
    writer = MultipartGzipWriter.open(objects, "x/small.gz", WriterState(), PART_SIZE, run_id="run-1", metadata={})
    data = [b"Email Address\r\n", *(f"person{index}@example.com\r\n".encode() for index in range(500))]
    for chunk in data:
        writer.write(chunk)

    # When it is sealed
    completed = writer.seal()

    # Then it was put whole, as the run's object: one valid gzip file, no multipart upload
    assert completed is not None
    stored = s3(aws_env).get_object(Bucket=objects.bucket, Key="x/small.gz")
    body = stored["Body"].read()
    assert gzip.decompress(body) == b"".join(data)
    assert (completed.bytes, completed.sha256) == (len(body), hashlib.sha256(body).hexdigest())
    assert stored["Metadata"]["run-id"] == "run-1" and [part.size for part in writer.state.parts] == [len(body)]
    assert (
        writer.state.upload_id is None
        and s3(aws_env).list_multipart_uploads(Bucket=objects.bucket).get("Uploads", []) == []
    )


def test_a_stream_starts_its_upload_when_it_first_leaves_memory(aws_env: str, objects: S3ExportObjects) -> None:
    # Given a new stream (no upload started) that must stop before it ends
    writer = MultipartGzipWriter.open(objects, "x/later.gz", WriterState(), PART_SIZE, run_id="run-1", metadata={})
    writer.write(b"first invocation's share\r\n")

    # When it is suspended
    writer.suspend("mailchimp/_staging/run-1/tail-00001")

    # Then its multipart upload exists (it will be completed, never put whole)
    uploads = s3(aws_env).list_multipart_uploads(Bucket=objects.bucket).get("Uploads", [])
    assert [upload["UploadId"] for upload in uploads] == [writer.state.upload_id]
