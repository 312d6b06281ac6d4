"""What the benchmarks share: free ports, the Mailchimp sandbox in its own process (so it never
shares the benchmark's GIL) and a moto server beside it."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from moto.server import ThreadedMotoServer

from sandbox.mailchimp.client import SandboxClient

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_sandbox(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.mailchimp", "--port", str(port), "--log-level", "WARNING"],
        cwd=REPO_ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1).raise_for_status()
            return process
        except requests.exceptions.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the sandbox did not start")


@contextmanager
def sandbox_and_moto() -> Iterator[tuple[SandboxClient, str]]:
    """The sandbox (own process) and a moto server, stopped afterwards: (sandbox, moto URL)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    port = free_port()
    process = start_sandbox(port)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, moto_port = moto.get_host_and_port()
        yield SandboxClient(f"http://127.0.0.1:{port}"), f"http://{host}:{moto_port}"
    finally:
        moto.stop()
        process.terminate()
        process.wait(timeout=10)
