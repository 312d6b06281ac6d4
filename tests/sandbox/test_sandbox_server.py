"""Starting and stopping the sandbox: in-process and as ``python -m sandbox.mailchimp``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox.mailchimp import DEFAULT_LIST_ID, MARKETING_API_KEY, SandboxServer
from sandbox.mailchimp.client import SandboxClient

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the sandbox exited early with {process.returncode}")
        try:
            requests.get(f"{url}/_sandbox/health", timeout=1).raise_for_status()
            return
        except requests.exceptions.ConnectionError:
            time.sleep(0.05)
    raise AssertionError(f"the sandbox did not answer at {url}")


@pytest.fixture
def sandbox_process() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.mailchimp", "--seed-members", "25"],
        cwd=REPO_ROOT,
        env={**os.environ, "SANDBOX_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def test_the_command_line_serves_on_the_port_from_sandbox_port_with_seeded_members(
    sandbox_process: tuple[subprocess.Popen[bytes], str],
) -> None:
    # Given
    _, url = sandbox_process

    # When
    members = SandboxClient(url).marketing_sdk().lists.get_list_members_info(DEFAULT_LIST_ID)

    # Then
    assert members["total_items"] == 25


def test_ctrl_c_stops_the_command_line_sandbox_cleanly(sandbox_process: tuple[subprocess.Popen[bytes], str]) -> None:
    # Given
    process, _ = sandbox_process

    # When
    process.send_signal(signal.SIGINT)

    # Then
    assert process.wait(timeout=10) == 0


def test_sigterm_stops_the_command_line_sandbox_cleanly(sandbox_process: tuple[subprocess.Popen[bytes], str]) -> None:
    # Given
    process, _ = sandbox_process

    # When
    process.terminate()

    # Then
    assert process.wait(timeout=10) == 0


def test_an_in_process_sandbox_on_port_zero_gets_a_free_port_and_closes_it_on_stop() -> None:
    # Given
    with SandboxServer(host="127.0.0.1", port=0) as server:
        url = server.url
        answer = requests.get(f"{url}/3.0/ping", auth=("user", MARKETING_API_KEY), timeout=5)

    # When
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/3.0/ping", auth=("user", MARKETING_API_KEY), timeout=5)

    # Then
    assert url.startswith("http://127.0.0.1:")
    assert answer.status_code == 200


def test_stop_closes_idle_keep_alive_connections() -> None:
    # Given a pooled connection left open by a client
    server = SandboxServer(port=0).start()
    session = requests.Session()
    session.get(f"{server.url}/3.0/ping", auth=("user", MARKETING_API_KEY), timeout=5).raise_for_status()

    # When
    server.stop()

    # Then
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{server.url}/3.0/ping", auth=("user", MARKETING_API_KEY), timeout=5)
    session.close()


def test_a_marketing_call_without_credentials_is_api_key_missing(sandbox: SandboxClient) -> None:
    # When
    response = requests.get(f"{sandbox.marketing_url}/ping", timeout=5)

    # Then
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["title"] == "API Key Missing"


def test_an_unknown_marketing_path_is_resource_not_found(sandbox: SandboxClient) -> None:
    # When
    response = requests.get(f"{sandbox.marketing_url}/campaigns-nope", auth=("u", MARKETING_API_KEY), timeout=5)

    # Then
    assert response.status_code == 404
    assert response.json()["title"] == "Resource Not Found"
