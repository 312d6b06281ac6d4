"""AWS failures that moto cannot produce, for tests: an HTTP proxy in front of the moto server
that answers chosen requests with an AWS error instead of passing them on.

Point the code under test at ``AwsFaults.url`` (``AWS_ENDPOINT_URL``); everything else goes to
moto untouched. A rule names the operation to fail (``TransactWriteItems``,
``CompleteMultipartUpload``...), the error, how many times, and optionally an operation that
must have succeeded first: "fail the checkpoint written right after the upload completed" is
``fail("TransactWriteItems", ..., after="CompleteMultipartUpload")``. That is how a Lambda
that dies (or is throttled) between two calls is reproduced without touching the code.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.scripted_http import POLL_SECONDS

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te", "trailer"}


@dataclass(frozen=True)
class AwsError:
    status: int
    body: bytes
    content_type: str


def dynamodb_error(code: str, message: str, **fields: object) -> AwsError:
    """A DynamoDB error as the service sends it (``fields`` such as ``CancellationReasons``)."""
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **fields}
    return AwsError(400, json.dumps(body).encode(), "application/x-amz-json-1.0")


def transaction_cancelled(*reasons: str) -> AwsError:
    """TransactWriteItems cancelled, one reason per item (``None``, ``TransactionConflict``...)."""
    return dynamodb_error(
        "TransactionCanceledException",
        f"Transaction cancelled, please refer cancellation reasons for specific reasons [{', '.join(reasons)}]",
        CancellationReasons=[{"Code": reason} for reason in reasons],
    )


def s3_error(status: int, code: str, message: str) -> AwsError:
    body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return AwsError(status, body.encode(), "application/xml")


def operation_of(method: str, path: str, headers: dict[str, str]) -> str:
    """The API operation of a request, as far as these tests need to tell them apart."""
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    query = parse_qs(urlsplit(path).query, keep_blank_values=True)
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if method == "POST" and "uploadId" in query:
        return "CompleteMultipartUpload"
    if method == "PUT" and "partNumber" in query:
        return "UploadPart"
    if method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload"
    return {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, method)


@dataclass
class _Rule:
    operation: str
    error: AwsError
    times: int
    after: str | None
    after_path: str
    armed: bool
    delay_seconds: float = 0.0

    def observe_success(self, operation: str, path: str) -> None:
        if not self.armed and operation == self.after and self.after_path in path:
            self.armed = True


class AwsFaults:
    """The proxy. Use as a context manager; ``url`` is where AWS clients should go."""

    def __init__(self, moto_url: str) -> None:
        target = urlsplit(moto_url)
        self._moto = (target.hostname or "127.0.0.1", target.port or 80)
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self.failed: list[str] = []  # operations answered with an injected error, in order
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, name="aws-faults", daemon=True
        )

    def __enter__(self) -> AwsFaults:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(
        self,
        operation: str,
        error: AwsError,
        *,
        times: int = 1,
        after: str | None = None,
        after_path: str = "",
        delay_seconds: float = 0.0,
    ) -> None:
        """Answer the next ``times`` requests of ``operation`` with ``error``; with ``after``, only
        those that come once an ``after`` request (whose path holds ``after_path``) succeeded.
        ``delay_seconds``: answer that late (a slow AWS; the client may give up first)."""
        with self._lock:
            self._rules.append(
                _Rule(operation, error, times, after, after_path, armed=after is None, delay_seconds=delay_seconds)
            )

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def _injected(self, operation: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.armed and rule.times > 0 and rule.operation == operation:
                    rule.times -= 1
                    self.failed.append(operation)
                    return rule
        return None

    def _succeeded(self, operation: str, path: str) -> None:
        with self._lock:
            for rule in self._rules:
                rule.observe_success(operation, path)

    @contextmanager
    def _moto_connection(self) -> Iterator[http.client.HTTPConnection]:
        connection = http.client.HTTPConnection(*self._moto, timeout=60)
        try:
            yield connection
        finally:
            connection.close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline().strip():
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _relay(self) -> None:
                body = self._body()
                headers = {name.lower(): value for name, value in self.headers.items()}
                operation = operation_of(self.command, self.path, headers)
                rule = proxy._injected(operation)
                if rule is not None:
                    time.sleep(rule.delay_seconds)
                    error = rule.error
                    self.send_response(error.status)
                    self.send_header("Content-Type", error.content_type)
                    self.send_header("Content-Length", str(len(error.body)))
                    self.end_headers()
                    self.wfile.write(error.body)
                    return
                forwarded = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
                forwarded["Content-Length"] = str(len(body))
                with proxy._moto_connection() as connection:
                    connection.request(self.command, self.path, body=body, headers=forwarded)
                    answer = connection.getresponse()
                    payload = answer.read()
                    if 200 <= answer.status < 300:
                        # Before answering: the client's next request may be the one to fail.
                        proxy._succeeded(operation, self.path)
                    self.send_response(answer.status)
                    for name, value in answer.getheaders():
                        if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                            self.send_header(name, value)
                    length = answer.getheader("Content-Length") if self.command == "HEAD" else None
                    self.send_header("Content-Length", length or str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

        return Handler
