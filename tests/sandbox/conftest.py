"""Helpers for the sandbox tests: official SDK clients pointed at the per-test sandbox, and
unique addresses so that no two tests share a member."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import mailchimp_marketing
import mailchimp_transactional
import pytest

from sandbox.mailchimp.client import SandboxClient

# ../shared/reference/mailchimp next to the checkout; users' checkouts don't have it.
SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "reference" / "mailchimp"


@pytest.fixture
def marketing(sandbox: SandboxClient) -> mailchimp_marketing.Client:
    return sandbox.marketing_sdk()


@pytest.fixture
def transactional(sandbox: SandboxClient) -> mailchimp_transactional.Client:
    return sandbox.transactional_sdk()


@pytest.fixture
def unique_email(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """unique_email("ann") -> "ann-<test>-<random>@example.net" (a domain that is not fake)."""
    test_name = request.node.name.replace("_", "-").replace("[", "-").replace("]", "")[:30]

    def make(prefix: str = "person") -> str:
        return f"{prefix}-{test_name}-{uuid.uuid4().hex[:8]}@example.net".lower()

    return make


@pytest.fixture(scope="session")
def mailchimp_spec_dir() -> Path:
    """The official specifications, or a clean skip where they are absent."""
    if not (SPEC_DIR / "marketing.json").is_file():
        pytest.skip(f"Mailchimp specifications not found at {SPEC_DIR}")
    return SPEC_DIR
