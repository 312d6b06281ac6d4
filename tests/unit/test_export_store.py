"""What the export decides about its objects, on an in-memory store (tests/support/export_objects.py)
instead of S3: the gzip stream across invocations, a completion the store has forgotten, a
short stream put whole, and the manifest built from the checkpoint. The requests themselves
are tested against moto (tests/integration/test_export_writer.py)."""

from __future__ import annotations

import gzip
import hashlib
import random
from datetime import UTC, datetime

import pytest

from chimpbridge.logic.export.writer import MultipartGzipWriter, UploadLost, complete_upload, create_upload
from chimpbridge.models.export import Checkpoint, CsvColumn, Manifest, UploadedPart, WriterState
from tests.support.export_objects import InMemoryExportObjects

PART_SIZE = 64 * 1024


def chunks(seed: int) -> list[bytes]:
    """About 1 MiB that gzip cannot shrink much, in pieces the size of a page of lines."""
    generator = random.Random(seed)
    return [generator.randbytes(16 * 1024) for _ in range(64)]


def test_a_stream_suspended_across_invocations_is_one_gzip_file() -> None:
    # Given a stream written by four "invocations", each parking its tail in the store and the
    # next one reopening the stream from the saved state
    objects = InMemoryExportObjects()
    state = WriterState()
    data = chunks(1)
    consumed: list[str] = []
    for invocation, start in enumerate(range(0, len(data), 16)):
        writer = MultipartGzipWriter.open(objects, "x/resumed.gz", state, PART_SIZE, run_id="run-1", metadata={})
        consumed += writer.consumed_tails
        for chunk in data[start : start + 16]:
            writer.write(chunk)
            if writer.part_due():
                writer.cut_part()
        if start + 16 < len(data):
            writer.suspend(f"mailchimp/_staging/run-1/tail-{invocation}")
            state = writer.state

    # When the last invocation seals it and the upload is completed
    assert writer.seal() is None
    completed = complete_upload(objects, "x/resumed.gz", writer.state, run_id="run-1", sha256=writer.sha256)

    # Then the object is one gzip file of exactly the input, its SHA-256 read back, and every
    # tail parked on the way was picked up by the next invocation
    body = objects.objects["x/resumed.gz"].data
    assert gzip.decompress(body) == b"".join(data)
    assert (completed.bytes, completed.sha256) == (len(body), hashlib.sha256(body).hexdigest())
    assert consumed == [f"mailchimp/_staging/run-1/tail-{invocation}" for invocation in range(3)]
    assert objects.objects["x/resumed.gz"].metadata == {"run-id": "run-1"}


def test_a_completion_the_store_has_forgotten_is_proven_by_the_object_of_the_run() -> None:
    # Given a stream whose upload was completed once (the store then forgets the upload)
    objects = InMemoryExportObjects()
    state = create_upload(objects, "x/twice.gz", run_id="run-1", content_type="application/gzip", metadata={})
    writer = MultipartGzipWriter.open(objects, "x/twice.gz", state, PART_SIZE)
    writer.write(b"members\n")
    writer.seal()
    first = complete_upload(objects, "x/twice.gz", writer.state, run_id="run-1", sha256=None)

    # When it is completed again, as a retry after a death does
    again = complete_upload(objects, "x/twice.gz", writer.state, run_id="run-1", sha256=None)

    # Then the object of that run stands for the completion; another run's object would not
    assert (again.bytes, again.sha256, again.version_id) == (first.bytes, first.sha256, first.version_id)
    with pytest.raises(UploadLost):
        complete_upload(objects, "x/twice.gz", writer.state, run_id="run-2", sha256=None)


def test_a_stream_that_ends_before_its_first_part_is_put_whole() -> None:
    # Given a new stream that stays under the part size
    objects = InMemoryExportObjects()
    writer = MultipartGzipWriter.open(objects, "x/small.gz", WriterState(), PART_SIZE, run_id="run-1", metadata={})
    writer.write(b"Email Address\r\nperson@example.com\r\n")

    # When it is sealed
    completed = writer.seal()

    # Then it is the complete object, put in one request, with no multipart upload
    assert completed is not None and objects.requests == ["put"]
    assert gzip.decompress(objects.objects["x/small.gz"].data) == b"Email Address\r\nperson@example.com\r\n"


def test_the_manifest_is_built_from_the_finished_checkpoint() -> None:
    # Given the checkpoint of a run whose object is complete
    part = UploadedPart(number=1, etag='"e"', sha256="c2hh", size=120)
    checkpoint = Checkpoint(
        run_id="run-1",
        owner="execution-1",
        list_id="a1b2c3",
        mode="incremental",
        format="csv",
        statuses=None,
        tick="2025-01-06T02:00:00+00:00",
        scheduled_time=None,
        started_at=datetime(2025, 1, 6, 2, 0, 1, tzinfo=UTC),
        key="mailchimp/audiences/a1b2c3/x.csv.gz",
        manifest_key="mailchimp/audiences/a1b2c3/manifests/x.csv.json",
        window_since=1_736_121_600,
        window_before=1_736_128_800,
        previous_watermark=1_736_121_600,
        merge_fields=[CsvColumn(tag="FNAME", name="First Name")],
        rows=3,
        counts={"unsubscribed": 1, "subscribed": 2},
        writer=WriterState(parts=[part], raw_bytes=300),
        phase="finalizing",
        object_bytes=120,
        object_sha256="ab" * 32,
        finished_at=datetime(2025, 1, 6, 2, 0, 9, tzinfo=UTC),
    )

    # When its manifest is made
    manifest = Manifest.of(checkpoint, bucket="exports", columns=["Email Address", "First Name"])

    # Then it names the window and watermark as times, the object, and the counts in order
    assert manifest.window.since_last_changed == datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
    assert manifest.window.before_last_changed == manifest.watermark == datetime(2025, 1, 6, 2, 0, tzinfo=UTC)
    assert manifest.previous_watermark == datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
    assert (manifest.object.bucket, manifest.object.key, manifest.object.bytes) == ("exports", checkpoint.key, 120)
    assert (manifest.object.uncompressed_bytes, manifest.object.parts) == (300, [part])
    assert list(manifest.counts_by_status) == ["subscribed", "unsubscribed"]
    assert (manifest.rows, manifest.columns) == (3, ["Email Address", "First Name"])
