"""A webhook receiver on 127.0.0.1 (a free port) for the sandbox's audience webhooks.

It answers from a script of ``scripted_http.Answer`` values (the first goes to Mailchimp's
validating GET, the next ones to the POSTs in turn, the last one repeats; ``RESET`` drops the
connection) and keeps every request, so a test can read the exact form payloads.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from tests.support.scripted_http import Answer, Seen

# serve_forever polls for shutdown this often; the default half second would add up over a suite.
_POLL_SECONDS = 0.02


class WebhookReceiver:
    def __init__(self, *answers: Answer, path: str = "/hooks/mailchimp") -> None:
        self.script = list(answers) or [Answer(200, body=b"")]
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with outer._lock:
                    outer._seen.append(Seen(self.command, self.path, dict(self.headers), body))
                    answer = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                payload = answer.body if isinstance(answer.body, bytes) else b"ok"
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_HEAD = do_POST = _answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": _POLL_SECONDS}, daemon=True
        )
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}{path}"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def posts(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, str]]:
        """The form fields of the POSTs so far, once there are at least ``count`` (blank values kept)."""
        deadline = time.monotonic() + timeout
        while True:
            posts = [request for request in self.requests if request.method == "POST"]
            if len(posts) >= count:
                return [dict(parse_qsl(post.body.decode(), keep_blank_values=True)) for post in posts]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(posts)} of {count} webhook POSTs arrived within {timeout} s")
            time.sleep(0.02)
