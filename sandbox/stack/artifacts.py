"""Built artifacts as Lambda receives them: ``sam deploy`` zips each one with every entry dated
1980-01-01, Lambda unpacks it into a read-only folder (``/var/task``, ``/opt``), and Python
may write no bytecode there. Tests and benchmarks use this to run what we ship."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path

SAM_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
SAM_ZIP_EPOCH = 315532800  # 1980-01-01T00:00:00Z


def zip_as_sam(folder: Path, archive: Path) -> Path:
    """``folder`` zipped the way sam packages it: relative paths, every entry dated 1980."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                entry = zipfile.ZipInfo(str(path.relative_to(folder)), date_time=SAM_ZIP_DATE)
                entry.external_attr = (stat.S_IMODE(path.stat().st_mode) | stat.S_IFREG) << 16
                entry.compress_type = zipfile.ZIP_DEFLATED
                bundle.writestr(entry, path.read_bytes())
    return archive


def unzip_read_only(archive: Path, destination: Path) -> Path:
    """``archive`` unpacked into ``destination`` with the archive's dates, then made read-only."""
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(destination)
    for path in sorted(destination.rglob("*"), reverse=True):  # children before their folders
        os.utime(path, (SAM_ZIP_EPOCH, SAM_ZIP_EPOCH))
        path.chmod(0o555 if path.is_dir() else 0o444)
    destination.chmod(0o555)
    return destination


def as_deployed(folder: Path, destination: Path) -> Path:
    """A read-only copy of a built artifact after sam's zip and Lambda's unzip."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    archive = zip_as_sam(folder, destination.with_suffix(".zip"))
    try:
        return unzip_read_only(archive, destination)
    finally:
        archive.unlink()


def remove(folder: Path) -> None:
    """Delete a read-only copy made by ``as_deployed``."""
    if folder.exists():
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(folder)
