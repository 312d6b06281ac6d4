"""CloudFormation's side of a custom resource, on loopback: the requests it sends (built from
events/<function>/*.json) and the presigned ResponseURL the function PUTs its answer to."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.functions import event

# serve_forever polls for shutdown this often; the default half second would add up over a suite.
_POLL_SECONDS = 0.02


class ResponseBucket:
    """Stands in for the S3 bucket behind ResponseURL: keeps every PUT body (JSON), answers 200."""

    def __init__(self) -> None:
        self._answers: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with outer._lock:
                    outer._answers.setdefault(self.path.split("?", 1)[0], []).append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": _POLL_SECONDS}, daemon=True
        )
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"

    def start(self) -> ResponseBucket:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def response_url(self, request_id: str) -> str:
        return f"{self.url}/responses/{request_id}?X-Amz-Signature=test"

    def answers(self, request_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._answers.get(f"/responses/{request_id}", []))

    def answer(self, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The one answer to a request (a second one would be a protocol error)."""
        deadline = time.monotonic() + timeout
        while not self.answers(request_id):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer to {request_id} within {timeout} s")
            time.sleep(0.02)
        time.sleep(0.05)  # a late second answer would show up now
        (answer,) = self.answers(request_id)
        return answer


def custom_resource_request(
    sample: str, bucket: ResponseBucket, properties: dict[str, Any], old_properties: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A sample request (``events/<function>/<kind>.json``) with a fresh RequestId, answered to
    ``bucket``, asking for ``properties`` (and ``old_properties`` on an update)."""
    request = event(sample)
    request["RequestId"] = str(uuid.uuid4())
    request["ResponseURL"] = bucket.response_url(request["RequestId"])
    request["ResourceProperties"] = {"ServiceToken": request["ServiceToken"], **properties}
    if old_properties is not None:
        request["OldResourceProperties"] = {"ServiceToken": request["ServiceToken"], **old_properties}
    return request
