"""Fixtures of the integration tests that run a function against a sandbox of their module's own:
the audience export (test_export*.py: ``world``, ``audience``), the audience import
(test_audience_import*.py: ``import_world``), and the Prism contract tests (``prism_url``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.mailchimp.client import SandboxClient
from sandbox.mailchimp.server import SandboxServer
from tests.support.audience_import import ImportWorld
from tests.support.audience_world import new_list_id
from tests.support.export import AUDIENCE_SIZE, ExportWorld
from tests.support.prism import SPEC_DIR, start_prism, stop_prism


@pytest.fixture(scope="module")
def mailchimp() -> Iterator[SandboxClient]:
    """A sandbox of each module's own: no other module resets it or injects faults into it."""
    with SandboxServer(host="127.0.0.1", port=0) as server:
        client = SandboxClient(server.url)
        yield client
        client.close()


@pytest.fixture
def world(aws_env: str, mailchimp: SandboxClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[ExportWorld]:
    yield ExportWorld(aws_env, mailchimp, monkeypatch)
    # What a test changed in the module's sandbox ends with the test (audiences are per test).
    mailchimp.faults()
    mailchimp.set_keys(marketing=[mailchimp.marketing_api_key])
    mailchimp.options(since_last_changed="inclusive")


@pytest.fixture
def import_world(aws_env: str, mailchimp: SandboxClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[ImportWorld]:
    yield ImportWorld(aws_env, mailchimp, monkeypatch)
    mailchimp.faults()


@pytest.fixture
def audience(mailchimp: SandboxClient) -> str:
    """A fresh audience of 25,000 generated members in mixed statuses."""
    list_id = new_list_id()
    mailchimp.seed(list_id, AUDIENCE_SIZE)
    return list_id


@pytest.fixture(scope="module")
def prism_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prism mock server of the Marketing API specification, one per module."""
    if not (SPEC_DIR / "marketing.prism.json").is_file():
        pytest.skip(f"Mailchimp specifications not found at {SPEC_DIR}")
    process, url = start_prism(SPEC_DIR / "marketing.prism.json", tmp_path_factory.mktemp("prism") / "marketing.log")
    yield url
    stop_prism(process)
