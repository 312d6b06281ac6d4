"""The HTTP server: HTTP/1.1 with keep-alive, one thread per connection (so slow requests
are served concurrently), and a stop() that also ends idle keep-alive connections and
requests held by the timeout fault."""

from __future__ import annotations

import contextlib
import email.utils
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox.mailchimp.app import SandboxApp
from sandbox.mailchimp.constants import DEFAULT_LIST_ID
from sandbox.mailchimp.http_types import Request, Response
from sandbox.mailchimp.traffic import ConnectionInfo

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4010
# An idle keep-alive connection is closed after this long, as load balancers in front of
# Mailchimp do; clients must cope with a pooled connection going away.
IDLE_CONNECTION_SECONDS = 300
_SHUTDOWN_POLL_SECONDS = 0.05
_COALESCE_LIMIT = 64 * 1024


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, address: tuple[str, int]) -> None:
        self.app: SandboxApp | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                connection.shutdown(socket.SHUT_RDWR)


class _Ipv6HttpServer(_HttpServer):
    address_family = socket.AF_INET6


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MailchimpSandbox/1.0"
    sys_version = ""
    timeout = IDLE_CONNECTION_SECONDS
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in one write, but without NODELAY a small response on a
        # keep-alive connection can still wait for the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection_info = ConnectionInfo()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # the client went away first
        finally:
            self.server.untrack(self.connection)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _serve(self, send_body: bool = True) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._write(Response(status=411, body=b'{"error":"send a Content-Length"}'), send_body)
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._write(Response(status=400, body=b'{"error":"bad Content-Length"}'), send_body)
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers=dict(self.headers.items()),
            body=body,
        )
        app = self.server.app
        assert app is not None, "the server is started by SandboxServer, which sets the app first"
        response = app.handle(request, self.connection_info)
        if response.drop_connection:
            self.close_connection = True
            return
        try:
            self._write(response, send_body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client timed out and left

    def _write(self, response: Response, send_body: bool) -> None:
        reason = HTTPStatus(response.status).phrase if response.status in HTTPStatus._value2member_map_ else ""
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Server: {self.server_version}",
            f"Date: {email.utils.formatdate(usegmt=True)}",
            f"Content-Length: {len(response.body)}",
        ]
        if response.content_type:
            lines.append(f"Content-Type: {response.content_type}")
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not send_body:
            self.wfile.write(head)
        elif len(response.body) < _COALESCE_LIMIT:
            self.wfile.write(head + response.body)  # one segment for small answers
        else:
            self.wfile.write(head)  # no copy of a large page just to prepend the head
            self.wfile.write(response.body)
        self.log_request(response.status, len(response.body))

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class SandboxServer:
    """The sandbox on a loopback port: ``SandboxServer(port=0).start()`` picks a free port.

    ``url`` is the base URL; the Marketing API is at ``url + "/3.0"``, Transactional at
    ``url + "/api/1.3"``. ``stop()`` (or leaving the ``with`` block) closes everything.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        owns_process: bool = False,
        seed_members: int = 0,
    ) -> None:
        """``owns_process``: the sandbox is alone in its process (the command line) and may
        tune process-wide settings such as the garbage collector. ``seed_members``: generated
        members in the default audience before the first request is served."""
        self.host = host
        self.owns_process = owns_process
        self.seed_members = seed_members
        self.requested_port = port
        self._stopping = threading.Event()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._bound_port: int | None = None
        self.app: SandboxApp | None = None

    @property
    def port(self) -> int:
        """The bound port (kept after stop() so that logs and messages can still name it)."""
        if self._bound_port is None:
            raise RuntimeError("the sandbox was never started")
        return self._bound_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        if self._httpd is not None:
            raise RuntimeError("the sandbox is already started")
        self._stopping.clear()
        server_class = _Ipv6HttpServer if ":" in self.host else _HttpServer
        self._httpd = server_class((self.host, self.requested_port))
        self._bound_port = int(self._httpd.server_address[1])
        self.app = SandboxApp(self.url, self._stopping, self.owns_process)
        self._httpd.app = self.app
        if self.seed_members:
            self.app.control.seed(DEFAULT_LIST_ID, self.seed_members)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL_SECONDS},
            name=f"mailchimp-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("Mailchimp sandbox listening on %s", self.url)
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        if self.app is not None:
            self.app.stop()  # wakes requests held by latency or timeout faults
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None
        logger.info("Mailchimp sandbox stopped")

    def wait(self) -> None:
        """Block until stop() is called from another thread (or a signal handler)."""
        while not self._stopping.wait(0.5):
            pass

    def __enter__(self) -> SandboxServer:
        if self._httpd is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
