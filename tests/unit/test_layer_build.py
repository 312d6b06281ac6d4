"""What `sam build` made of the shared layer (make test builds before pytest runs): the pinned
closure for python3.13 on arm64, the package with its templates, and nothing from AWS's own
runtime. Skipped when there is no build (a bare `pytest` run)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / ".aws-sam" / "build" / "SharedLayer" / "python"
REQUIREMENTS = ROOT / "layers" / "chimpbridge" / "requirements.txt"

pytestmark = pytest.mark.skipif(not BUILT.is_dir(), reason="no sam build output (run make build)")


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
    assert not list(BUILT.rglob("__pycache__"))


def test_the_runtime_s_own_aws_sdk_is_not_shadowed():
    assert not (BUILT / "boto3").exists()
    assert not (BUILT / "botocore").exists()
