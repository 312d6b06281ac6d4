"""What `sam build` made of the shared layer and the functions (make test builds before pytest
runs): the pinned closure for python3.13 on arm64, the package with its templates, nothing from
AWS's own runtime, and Python 3.13 bytecode for every module that survives sam's zip."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.stack.artifacts import as_deployed, remove

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
BUILT = BUILD / "SharedLayer" / "python"
REQUIREMENTS = ROOT / "layers" / "chimpbridge" / "requirements.txt"
FUNCTIONS = sorted(path for path in BUILD.glob("*Function") if path.is_dir())
UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked

pytestmark = pytest.mark.skipif(not BUILT.is_dir(), reason="no sam build output (run make build)")
needs_313 = pytest.mark.skipif(sys.version_info[:2] != (3, 13), reason="reading 3.13 bytecode needs Python 3.13")


def pinned() -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in REQUIREMENTS.read_text().splitlines()]
    return dict(line.split("==") for line in lines if line)


def normalise(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def test_every_pinned_distribution_is_built_at_its_version():
    built = {}
    for info in BUILT.glob("*.dist-info"):
        name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
        built[normalise(name)] = version
    assert {normalise(name): version for name, version in pinned().items()} == built


def test_compiled_dependencies_target_python313_on_arm64():
    extensions = list(BUILT.rglob("*.so"))
    assert extensions
    assert all("cpython-313-aarch64-linux-gnu" in path.name or "abi3" in path.name for path in extensions)


def test_the_package_and_its_email_templates_are_in_the_layer():
    assert (BUILT / "chimpbridge" / "clients.py").is_file()
    assert list((BUILT / "chimpbridge" / "templates").glob("*.html"))


def test_the_runtime_s_own_aws_sdk_is_not_shadowed():
    assert not (BUILT / "boto3").exists()
    assert not (BUILT / "botocore").exists()


def test_every_function_of_the_template_is_built_from_its_folder_without_the_makefile():
    folders = {path.name for path in (ROOT / "functions").iterdir() if (path / "app.py").is_file()}
    assert len(FUNCTIONS) == len(folders)
    for function in FUNCTIONS:
        assert (function / "app.py").is_file()
        assert not (function / "Makefile").exists()


@needs_313
@pytest.mark.parametrize("artifact", [BUILT, *FUNCTIONS], ids=lambda path: path.relative_to(BUILD).parts[0])
def test_every_module_carries_unchecked_hash_bytecode_of_its_own_source(artifact: Path):
    sources = list(artifact.rglob("*.py"))
    assert sources
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        header = cached.read_bytes()[:16]
        assert header[:4] == importlib.util.MAGIC_NUMBER, cached
        assert int.from_bytes(header[4:8], "little") == UNCHECKED_HASH, cached
        assert header[8:16] == importlib.util.source_hash(source.read_bytes()), cached
    assert not [path for path in artifact.rglob("*.pyc") if ".cpython-313." not in path.name]


@needs_313
@pytest.mark.parametrize("function", ["SignupFunction", "HealthFunction"])
def test_after_sams_zip_every_module_loads_from_bytecode_and_nothing_is_written(function: str, tmp_path: Path):
    # Given the layer and the function as Lambda unpacks them: dated 1980, read-only
    layer = as_deployed(BUILT, tmp_path / "opt")
    task = as_deployed(BUILD / function, tmp_path / "task")
    files_before = sorted(tmp_path.rglob("*"))
    try:
        # When the runtime imports the handler with Python 3.13
        env = {**os.environ, "PYTHONPATH": f"{task}{os.pathsep}{layer}", "PYTHONDONTWRITEBYTECODE": "1"}
        imported = subprocess.run(
            [sys.executable, "-v", "-c", "import app"], cwd=task, env=env, capture_output=True, text=True, check=True
        )
        # Then every module of ours came from its .pyc, none was compiled, and the folders are unchanged
        loaded = re.findall(r"^# code object from '?(.+?)'?$", imported.stderr, re.MULTILINE)
        ours = [path for path in loaded if path.startswith(str(tmp_path))]
        assert len(ours) > 20
        assert all(path.endswith(".cpython-313.pyc") for path in ours), [p for p in ours if not p.endswith(".pyc")]
        assert "bytecode is stale" not in imported.stderr
        assert sorted(tmp_path.rglob("*")) == files_before
    finally:
        remove(layer)
        remove(task)
