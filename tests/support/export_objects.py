"""An in-memory export bucket: the export's store (dal/export_objects.py) without S3, for tests
of what the export decides rather than of the requests it makes (those run against moto).

It behaves as S3 does where the export relies on it: a checksum that does not match is refused,
a completed (or aborted) upload is gone, and every write of a key makes a new version."""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from chimpbridge.dal.export_objects import ObjectHead, StoredObject, UploadGone
from chimpbridge.models.export import UploadedPart


@dataclass
class _Object:
    data: bytes
    metadata: dict[str, str]
    version_id: str
    content_type: str | None


@dataclass
class _Upload:
    key: str
    content_type: str
    metadata: dict[str, str]
    parts: dict[int, bytes] = field(default_factory=dict)


@dataclass
class InMemoryExportObjects:
    bucket: str = "in-memory"
    objects: dict[str, _Object] = field(default_factory=dict)
    uploads: dict[str, _Upload] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def prepare(self) -> None:
        pass

    def start_upload(self, key: str, *, content_type: str, metadata: dict[str, str]) -> str:
        self.requests.append("start_upload")
        upload_id = f"upload-{next(self._ids)}"
        self.uploads[upload_id] = _Upload(key, content_type, dict(metadata))
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes, *, sha256: str) -> str:
        self.requests.append("upload_part")
        _check(data, sha256)
        self._upload(key, upload_id).parts[number] = data
        return _etag(data)

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[UploadedPart]) -> str | None:
        self.requests.append("complete_upload")
        upload = self._upload(key, upload_id)
        data = b"".join(upload.parts[part.number] for part in parts)
        del self.uploads[upload_id]  # S3 answers a repeat for a while, then forgets: the latter here
        return self._store(key, data, upload.metadata, upload.content_type).version_id

    def abort_upload(self, key: str, upload_id: str) -> None:
        self.requests.append("abort_upload")
        self.uploads.pop(upload_id, None)

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        sha256: str | None = None,
    ) -> StoredObject:
        self.requests.append("put")
        if sha256 is not None:
            _check(data, sha256)
        stored = self._store(key, data, metadata or {}, content_type)
        return StoredObject(etag=_etag(data), version_id=stored.version_id)

    def read(self, key: str, version_id: str | None = None) -> Iterator[bytes]:
        self.requests.append("read")
        stored = self.objects[key]
        assert version_id in (None, stored.version_id), "only the latest version is kept"
        yield stored.data

    def head(self, key: str) -> ObjectHead | None:
        self.requests.append("head")
        stored = self.objects.get(key)
        if stored is None:
            return None
        return ObjectHead(size=len(stored.data), metadata=dict(stored.metadata), version_id=stored.version_id)

    def delete(self, key: str, version_id: str | None = None) -> None:
        self.requests.append("delete")
        stored = self.objects.get(key)
        if stored is not None and version_id in (None, stored.version_id):
            del self.objects[key]

    def _upload(self, key: str, upload_id: str) -> _Upload:
        upload = self.uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise UploadGone(f"the upload of {key} is gone")
        return upload

    def _store(self, key: str, data: bytes, metadata: dict[str, str], content_type: str | None) -> _Object:
        stored = self.objects[key] = _Object(data, dict(metadata), f"v{next(self._ids)}", content_type)
        return stored


def _check(data: bytes, sha256: str) -> None:
    if base64.b64encode(hashlib.sha256(data).digest()).decode() != sha256:
        raise ValueError("the SHA-256 checksum does not match the data")


def _etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'  # as S3 makes a single part's ETag
