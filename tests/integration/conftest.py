"""Fixtures of the audience export's integration tests (test_export*.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.mailchimp.client import SandboxClient
from sandbox.mailchimp.server import SandboxServer
from tests.support.export import AUDIENCE_SIZE, ExportWorld, new_list_id


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
def audience(mailchimp: SandboxClient) -> str:
    """A fresh audience of 25,000 generated members in mixed statuses."""
    list_id = new_list_id()
    mailchimp.seed(list_id, AUDIENCE_SIZE)
    return list_id
