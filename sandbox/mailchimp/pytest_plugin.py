"""Pytest fixtures for the Mailchimp sandbox (registered in tests/conftest.py):

* ``sandbox_server``: session-scoped, in-process sandbox on a free loopback port.
* ``sandbox``: per test; resets the sandbox and yields a ``SandboxClient`` with ``.url``,
  ``.marketing_url``, ``.transactional_url``, ``.outbox()``, ``.stats()``, ``.faults(**kw)``,
  ``.seed(list_id, count)``, ``.reset()``, ``.set_keys(...)``, ``.options(...)``, the audience
  webhook helpers (``.webhooks()``, ``.webhook_deliveries()``, ``.wait_for_deliveries()``,
  ``.act_on_member()``, ...) and SDK factories.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.mailchimp.client import SandboxClient
from sandbox.mailchimp.server import SandboxServer


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxClient]:
    client = SandboxClient(sandbox_server.url)
    client.reset()
    try:
        yield client
    finally:
        # Faults outlive a test only if it failed midway; never let them leak into the next.
        client.faults()
        client.close()
