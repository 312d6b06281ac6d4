"""The two servers the stack stands on: moto (AWS) and the Mailchimp sandbox, started or found.

moto runs in-process (``ThreadedMotoServer``) for ``make dev``. Under pytest it runs in a child
process instead: moto's backends are process-global, and a unit test's ``mock_aws`` resets them,
which would silently empty a stack that other tests in the same session rely on.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Protocol

from sandbox.stack.local_config import MOTO_PORT, SANDBOX_PORT, advertised_url


class Service(Protocol):
    url: str

    def stop(self) -> None: ...


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class PortInUse(OSError):
    """Another program listens where a piece of the stack should."""


def ensure_port_free(host: str, port: int, what: str, env_var: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUse(
                f"{what} cannot listen on {host}:{port} ({error.strerror}); set {env_var} to another port"
            ) from error


def _get(url: str, timeout: float) -> tuple[int, bytes] | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URLs we built
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), b""
    except (OSError, ValueError):
        return None


def moto_answers(url: str, timeout: float = 1.0) -> bool:
    answer = _get(f"{url}/moto-api/config", timeout)  # cheap, read-only, and only moto has /moto-api
    return answer is not None and answer[0] in (200, 201)


def sandbox_answers(url: str, timeout: float = 1.0) -> bool:
    answer = _get(f"{url}/_sandbox/stats", timeout)
    if answer is None or answer[0] != 200:
        return False
    try:
        return isinstance(json.loads(answer[1]), dict)
    except ValueError:
        return False


class AttachedService:
    """A server somebody else runs (the ``make dev`` stack); stopping it is not ours to do."""

    def __init__(self, url: str) -> None:
        self.url = url

    def stop(self) -> None:
        """Left running for its owner."""


class InProcessMoto:
    def __init__(self, host: str, port: int) -> None:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: PLC0415 - heavy import

        # ThreadedMotoServer binds in its thread and would wait forever for a port that is taken.
        ensure_port_free(host, port, "moto", MOTO_PORT.env_var)
        # werkzeug would log every AWS call at INFO to the dev console; the function logs matter there.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self._server.start()
        bound_host, bound_port = self._server.get_host_and_port()
        self.url = advertised_url(bound_host, bound_port)

    def stop(self) -> None:
        self._server.stop()


class ChildProcessMoto:
    STARTUP_SECONDS = 30

    def __init__(self, host: str, port: int) -> None:
        port = port or free_port(host)
        self.url = advertised_url(host, port)
        self._process = subprocess.Popen(  # noqa: S603 - our interpreter running moto
            [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.STARTUP_SECONDS
        while not moto_answers(self.url, timeout=0.5):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto server did not start on {self.url}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


class SandboxUnavailable(RuntimeError):
    """The Mailchimp sandbox package cannot be imported."""


class MailchimpSandbox:
    def __init__(self, host: str, port: int) -> None:
        ensure_port_free(host, port, "the Mailchimp sandbox", SANDBOX_PORT.env_var)
        try:
            from sandbox.mailchimp import SandboxServer  # noqa: PLC0415 - optional until a template needs it
        except ImportError as error:
            raise SandboxUnavailable(
                f"the Mailchimp sandbox (sandbox/mailchimp) cannot be imported ({error}); "
                "functions that call Mailchimp will fail"
            ) from error
        self._server: Any = SandboxServer(host=host, port=port)
        self._server.start()
        self.url = advertised_url(host, port) if port else str(self._server.url).rstrip("/")

    def stop(self) -> None:
        self._server.stop()
