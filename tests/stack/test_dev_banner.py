"""What `make dev` prints: every address, and a curl per route that works when pasted."""

import shlex
import shutil
import subprocess

import pytest

from sandbox.stack.cli_output import banner
from sandbox.stack.pytest_plugin import RunningStack
from tests.stack.support import FIXTURES

pytestmark = pytest.mark.xdist_group("local-stack-fixture")


def test_the_banner_lists_addresses_routes_queues_and_what_is_not_emulated(fixture_stack: RunningStack) -> None:
    text = banner(fixture_stack.stack, FIXTURES / "events", startup_seconds=1.0)

    assert fixture_stack.api_url in text and fixture_stack.moto_url in text
    for route in fixture_stack.stack.application.routes:
        assert route.path in text
    assert "WorkQueue -> ConsumerFunction (batch 5)" in text
    assert "ScheduleV2 events are not emulated" in text


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_a_printed_curl_reaches_its_route(fixture_stack: RunningStack) -> None:
    # Given the curl the banner prints for GET /items/{item_id}
    lines = banner(fixture_stack.stack, FIXTURES / "events", startup_seconds=1.0).splitlines()
    curl = next(line.strip() for line in lines if line.strip().startswith("curl") and "/items/" in line)

    # When it is run as printed
    completed = subprocess.run(
        [*shlex.split(curl), "--silent"], capture_output=True, text=True, timeout=30, check=False
    )

    # Then the route answered
    assert completed.returncode == 0
    assert "HTTP/1.1 200" in completed.stdout
