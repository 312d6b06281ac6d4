"""One gzip file streamed to S3 as a multipart upload, in constant memory, across invocations.
The requests are the store's (:class:`~chimpbridge.dal.export_objects.ExportObjects`); what a
stream is made of, and when it is complete, is decided here.

The object is a single gzip member: a 10-byte header, one raw DEFLATE stream, and the trailer
(CRC-32 and length of the uncompressed data). Compressed bytes collect in a buffer that becomes
a part once it reaches the part size (S3 wants at least 5 MiB for every part but the last).
Before a part is cut the compressor is sync-flushed, so the part ends on a byte boundary and the
checkpoint taken after it needs no compressor state.

Across invocations: DEFLATE blocks from two compressors can follow each other (the new one never
refers back into data it has not seen), and CRC-32 continues from a saved integer. So a
suspended stream sync-flushes, parks the compressed bytes that are not yet a part in a staging
object (outside the audience folders), and the next invocation picks them up. The SHA-256 of
the whole object is the one thing that cannot continue (hashlib state cannot be saved): a
stream that never crossed an invocation hashes as it uploads; one that did is read back once,
after completion, and hashed then. Each part also carries its own SHA-256, which S3 verifies on
upload and which the manifest lists.

A stream that ends in the invocation it started in, before its first part was due, never needs
a multipart upload: sealing puts it whole (one request instead of start, part and complete). The
upload is started only when the stream first has to leave memory: its first part, or a
suspension (a stream that crosses invocations is always multipart).

Completing is a step of its own (:func:`complete_upload`), taken only once the stream is sealed
(its last part uploaded) and that fact checkpointed: an attempt that dies after S3 completed the
upload but before it could say so is retried by completing again, never by writing the stream
again (the upload is gone by then). S3 answers a repeated completion as it did the first, or,
once it has forgotten the upload, with NoSuchUpload (the store's ``UploadGone``); then the
object itself, carrying the run's id in its metadata, is the proof.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib
from dataclasses import dataclass

from chimpbridge.dal.export_objects import ExportObjects, ObjectHead, UploadGone
from chimpbridge.models.export import UploadedPart, WriterState

MIB = 1024 * 1024
# No file name, no mtime (the same input gives the same bytes), "unknown" OS.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
COMPRESSION_LEVEL = 6


RUN_ID_METADATA = "run-id"
CONTENT_TYPE = "application/gzip"


@dataclass(frozen=True)
class CompletedObject:
    bytes: int
    sha256: str  # hex
    version_id: str | None


class UploadLost(RuntimeError):
    """The upload is gone and no object of this run took its place: it was aborted."""


def create_upload(
    objects: ExportObjects, key: str, *, run_id: str, content_type: str, metadata: dict[str, str]
) -> WriterState:
    """Start the multipart upload a new stream goes to; the object will carry ``run_id``."""
    upload_id = objects.start_upload(key, content_type=content_type, metadata={**metadata, RUN_ID_METADATA: run_id})
    return WriterState(upload_id=upload_id)


def object_of_run(objects: ExportObjects, key: str, run_id: str) -> ObjectHead | None:
    """``key``'s object if run ``run_id`` wrote it (None if there is none, or another's)."""
    head = objects.head(key)
    return head if head is not None and head.metadata.get(RUN_ID_METADATA) == run_id else None


def completed_object(objects: ExportObjects, key: str, state: WriterState, run_id: str) -> ObjectHead | None:
    """The object the upload ``state`` describes became, if it was completed: ``key`` holds an
    object of run ``run_id`` of the stream's size. None if there is none (or another's)."""
    head = object_of_run(objects, key, run_id)
    if head is None or head.size != sum(part.size for part in state.parts):
        return None
    return head


def complete_upload(
    objects: ExportObjects, key: str, state: WriterState, *, run_id: str, sha256: str | None
) -> CompletedObject:
    """Complete the sealed upload ``state`` (again, if an attempt that died did it already).
    ``sha256``: the object's, if the writer could hash it on the way; else it is read back."""
    assert state.upload_id is not None, "a stream put whole is complete already"
    try:
        version_id = objects.complete_upload(key, state.upload_id, state.parts)
    except UploadGone:
        head = completed_object(objects, key, state, run_id)
        if head is None:
            raise UploadLost(f"the upload of {key} is gone and no object of run {run_id} is there") from None
        version_id = head.version_id
    size = sum(part.size for part in state.parts)
    digest = sha256 or _read_back_sha256(objects, key, version_id)
    return CompletedObject(bytes=size, sha256=digest, version_id=version_id)


def _read_back_sha256(objects: ExportObjects, key: str, version_id: str | None) -> str:
    digest = hashlib.sha256()
    for chunk in objects.read(key, version_id):
        digest.update(chunk)
    return digest.hexdigest()


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class MultipartGzipWriter:
    def __init__(
        self,
        objects: ExportObjects,
        key: str,
        state: WriterState,
        part_size: int,
        *,
        run_id: str,
        metadata: dict[str, str],
    ) -> None:
        self.objects = objects
        self.key = key
        self.state = state
        self.part_size = part_size
        self.run_id = run_id
        self.metadata = metadata
        self._compressor = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        self._pending = bytearray()
        self._hash = hashlib.sha256() if state.single_pass else None
        # Staging objects whose bytes are now inside an uploaded part or a newer tail.
        self.consumed_tails: list[str] = []

    @classmethod
    def open(
        cls,
        objects: ExportObjects,
        key: str,
        state: WriterState,
        part_size: int,
        *,
        run_id: str = "",
        metadata: dict[str, str] | None = None,
    ) -> MultipartGzipWriter:
        """Continue the stream ``state`` describes (a new one starts with the gzip header). The
        object will carry ``run_id`` and ``metadata`` (an upload already started has them)."""
        writer = cls(objects, key, state.model_copy(deep=True), part_size, run_id=run_id, metadata=metadata or {})
        if not state.parts and state.tail_key is None:
            # Nothing of this stream survived: whatever an earlier attempt wrote is written again.
            writer.state.crc32 = writer.state.raw_bytes = 0
            writer._pending += GZIP_HEADER
        elif state.tail_key is not None:
            tail = b"".join(objects.read(state.tail_key))
            if len(tail) != state.tail_size:
                raise RuntimeError(f"staging object {state.tail_key} has {len(tail)} bytes, expected {state.tail_size}")
            writer._pending += tail
            writer.consumed_tails.append(state.tail_key)
            writer.state.tail_key = None
            writer.state.tail_size = 0
        return writer

    @property
    def compressed_bytes(self) -> int:
        return sum(part.size for part in self.state.parts) + len(self._pending)

    @property
    def sha256(self) -> str | None:
        """Hex SHA-256 of the parts uploaded, if the stream never crossed an invocation."""
        return self._hash.hexdigest() if self._hash is not None else None

    def write(self, data: bytes) -> None:
        self.state.crc32 = zlib.crc32(data, self.state.crc32)
        self.state.raw_bytes += len(data)
        self._pending += self._compressor.compress(data)

    def part_due(self) -> bool:
        return len(self._pending) >= self.part_size

    def cut_part(self) -> None:
        """Upload everything written so far as the next part (call when :meth:`part_due`)."""
        self._pending += self._compressor.flush(zlib.Z_SYNC_FLUSH)
        self._upload(bytes(self._pending))
        self._pending.clear()

    def suspend(self, tail_key: str) -> None:
        """End this invocation's share: what is not a part yet goes to ``tail_key``."""
        self._start_upload()
        self._pending += self._compressor.flush(zlib.Z_SYNC_FLUSH)
        if self._pending:
            self.objects.put(tail_key, bytes(self._pending))
            self.state.tail_key = tail_key
            self.state.tail_size = len(self._pending)
        self._pending.clear()
        self.state.single_pass = False
        self._hash = None

    def seal(self) -> CompletedObject | None:
        """Write the gzip trailer. A stream with an upload uploads its last part: it is whole,
        ready to complete (:func:`complete_upload`, once the caller has checkpointed ``state``);
        None. A stream without one is put whole: the object, complete."""
        self._pending += self._compressor.flush(zlib.Z_FINISH)
        self._pending += struct.pack("<II", self.state.crc32, self.state.raw_bytes & 0xFFFFFFFF)
        data = bytes(self._pending)
        self._pending.clear()
        if self.state.upload_id is not None:
            self._upload(data)
            return None
        checksum = _sha256_b64(data)
        put = self.objects.put(
            self.key,
            data,
            content_type=CONTENT_TYPE,
            metadata={**self.metadata, RUN_ID_METADATA: self.run_id},
            sha256=checksum,
        )
        self.state.parts.append(UploadedPart(number=1, etag=put.etag, sha256=checksum, size=len(data)))
        digest = hashlib.sha256(data).hexdigest()
        return CompletedObject(bytes=len(data), sha256=digest, version_id=put.version_id)

    def _start_upload(self) -> str:
        upload_id = self.state.upload_id
        if upload_id is None:
            started = create_upload(
                self.objects, self.key, run_id=self.run_id, content_type=CONTENT_TYPE, metadata=self.metadata
            )
            upload_id = self.state.upload_id = started.upload_id
        assert upload_id is not None
        return upload_id

    def _upload(self, data: bytes) -> None:
        upload_id = self._start_upload()
        number = len(self.state.parts) + 1
        checksum = _sha256_b64(data)
        etag = self.objects.upload_part(self.key, upload_id, number, data, sha256=checksum)
        self.state.parts.append(UploadedPart(number=number, etag=etag, sha256=checksum, size=len(data)))
        if self._hash is not None:
            self._hash.update(data)
