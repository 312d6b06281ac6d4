"""Prism mock servers built from the official Mailchimp specifications, which answer 422 to a
request that breaks the spec, and a recording proxy that remembers every request our code sends
to the sandbox, so that each one can be replayed to Prism afterwards.

Absent specifications (../shared/reference/mailchimp) or Prism (``npm ci``) make a clean skip."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.stack.services import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = REPO_ROOT.parent / "shared" / "reference" / "mailchimp"
PRISM = REPO_ROOT / "node_modules" / ".bin" / "prism"
STARTUP_SECONDS = 60
FORWARDED_HEADERS = ("Authorization", "Content-Type", "User-Agent")


def start_prism(spec: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    if not PRISM.exists() or shutil.which("node") is None:
        pytest.skip("Prism is not installed (run npm ci)")
    port = free_port("127.0.0.1")
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), "--errors", str(spec)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"Prism exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"Prism did not listen on port {port}: {log.read_text()[-2000:]}")


def stop_prism(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class RecordingProxy:
    """Forwards every request to ``target`` and remembers it (method, path, query, headers, body)."""

    def __init__(self, target: str) -> None:
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name: self.headers[name] for name in FORWARDED_HEADERS if self.headers.get(name)}
                outer.requests.append({"method": self.command, "path": self.path, "headers": headers, "body": body})
                answer = requests.request(self.command, target + self.path, headers=headers, data=body, timeout=10)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def violations(prism_url: str, request: dict[str, Any]) -> list[Any]:
    """What Prism finds wrong with a recorded request (empty when it passes the spec)."""
    path = request["path"].removeprefix("/3.0")  # Prism serves the spec's paths without /3.0
    answer = requests.request(
        request["method"], prism_url + path, headers=request["headers"], data=request["body"] or None, timeout=30
    )
    if answer.status_code < 400:
        return []
    problem = answer.json()
    found = problem.get("validation", [])
    request_side = [item for item in found if item["location"][0] != "response"]
    if answer.status_code == 500 and found and not request_side:
        return []  # Prism's made-up answer failed its own response schema: not our request
    return [request["method"], path, answer.status_code, request_side or problem]
