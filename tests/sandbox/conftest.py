"""Helpers for the sandbox tests: official SDK clients pointed at the per-test sandbox, unique
addresses so that no two tests share a member, and local receivers for audience webhooks."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import mailchimp_marketing
import mailchimp_transactional
import pytest

from sandbox.mailchimp.client import SandboxClient
from tests.support.scripted_http import Answer
from tests.support.webhook_receiver import WebhookReceiver

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


@pytest.fixture
def webhook_receiver() -> Iterator[Callable[..., WebhookReceiver]]:
    """``webhook_receiver(Answer(200), Answer(500), Answer(200))``: a started receiver (see
    tests/support/webhook_receiver.py), stopped after the test. Without answers it answers 200."""
    started: list[WebhookReceiver] = []

    def start(*answers: Answer) -> WebhookReceiver:
        receiver = WebhookReceiver(*answers).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()
