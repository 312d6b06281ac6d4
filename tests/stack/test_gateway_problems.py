"""The local API answers what API Gateway answers itself with the documents template.yaml's
GatewayResponses make (tests/unit/test_gateway_responses.py renders them), over HTTP; and a
request whose body cannot be framed (a Content-Length that is not a number or is negative, a bad
chunk) gets a 400 problem and a closed connection instead of a traceback or a hang. Raw sockets,
since an HTTP client library would refuse to send such requests."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.stack.api_server import ApiGateway, ApiServer
from sandbox.stack.template import ApiRoute, ApiSpec, _gateway_responses
from sandbox.stack.workers import InvocationResult
from tests.support.gateway_responses import gateway_responses, render

# Long enough for a busy machine; a server that hangs never answers within it.
SOCKET_TIMEOUT_SECONDS = 20


def _invoke(function_id: str, event: Any) -> InvocationResult:
    if function_id == "BrokenFunction":
        payload = {"errorType": "RuntimeError", "errorMessage": "boom"}
        return InvocationResult(request_id="r", payload=payload, error=True, duration_ms=1, cold_start=False)
    answer = {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": event.get("body") or ""}
    return InvocationResult(request_id="r", payload=answer, error=False, duration_ms=1, cold_start=False)


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[str, int]]:
    """The template's Api (its gateway responses) in front of two stand-in functions."""
    spec = ApiSpec(
        logical_id="Api",
        stage_name="v1",
        cors=None,
        binary_media_types=(),
        stage_variables=None,
        gateway_responses=_gateway_responses(gateway_responses()),
    )
    routes = [
        ApiRoute(api_id="Api", path="/echo", method="POST", function_id="EchoFunction", event_name="Echo"),
        ApiRoute(api_id="Api", path="/broken", method="GET", function_id="BrokenFunction", event_name="Broken"),
    ]
    server = ApiServer(ApiGateway(routes, {"Api": spec}, _invoke, lambda *_: None), "127.0.0.1", 0).start()
    host, port = server.url.removeprefix("http://").split(":")
    yield host, int(port)
    server.stop()


def _expected(response_type: str, answer: requests.Response) -> tuple[int, dict[str, Any]]:
    status, _, body = render(response_type, message="", request_id=answer.headers["x-amzn-RequestId"])
    return status, body


@pytest.mark.parametrize(
    ("method", "path", "response_type"),
    [("GET", "/no-such-route", "MISSING_AUTHENTICATION_TOKEN"), ("GET", "/broken", "INTEGRATION_FAILURE")],
)
def test_the_gateways_own_answers_are_the_templates_problem_documents(api, method, path, response_type):
    host, port = api

    answer = requests.request(method, f"http://{host}:{port}{path}", timeout=SOCKET_TIMEOUT_SECONDS)

    assert (answer.status_code, answer.json()) == _expected(response_type, answer)
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_a_body_over_10_mb_is_the_templates_413(api):
    host, port = api

    answer = requests.post(f"http://{host}:{port}/echo", data=b"x" * (10 * 1024 * 1024 + 1), timeout=60)

    assert (answer.status_code, answer.json()) == _expected("REQUEST_TOO_LARGE", answer)


def _raw(
    api: tuple[str, int], request: bytes, *, then_close_writing: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as is; (status, headers, body) of the answer, which must end the connection."""
    with socket.create_connection(api, timeout=SOCKET_TIMEOUT_SECONDS) as connection:
        connection.sendall(request)
        if then_close_writing:
            connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):  # the server closes after a framing error
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    ("framing", "body"),
    [
        (b"Content-Length: abc\r\n", b""),
        (b"Content-Length: -5\r\n", b"hello"),
        (b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"),
        (b"Content-Length: 1e3\r\n", b""),
        (b"Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n"),
        (b"Transfer-Encoding: chunked\r\n", b"-5\r\nhello\r\n0\r\n\r\n"),
        (b"Transfer-Encoding: chunked\r\n", b"3\r\nhello\r\n0\r\n\r\n"),
        (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
        (b"Transfer-Encoding: gzip, chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    ],
)
def test_a_body_that_cannot_be_framed_is_a_400_problem_and_the_connection_closes(api, framing, body):
    # Given a request whose framing headers do not frame its body
    request = b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n" + framing + b"\r\n" + body

    # When it is sent
    status, headers, answer = _raw(api, request)

    # Then API Gateway's 400, as problem JSON, and the connection ends (the next request's start is unknown)
    assert status == 400
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    problem = json.loads(answer)
    assert (problem["status"], problem["type"]) == (400, "urn:chimpbridge:problem:gateway")


@pytest.mark.parametrize(
    ("framing", "body"),
    [
        (b"Content-Length: 50\r\n", b"only a part"),
        (b"Transfer-Encoding: chunked\r\n", b"a\r\nonly"),
        (b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n"),
    ],
)
def test_a_body_cut_short_is_answered_not_waited_on(api, framing, body):
    # Given a client that stops sending before its body is complete
    request = b"POST /echo HTTP/1.1\r\nHost: localhost\r\n" + framing + b"\r\n" + body

    # When it closes its side
    status, _, answer = _raw(api, request, then_close_writing=True)

    # Then it still gets an answer: a 400 problem
    assert status == 400
    assert json.loads(answer)["status"] == 400


def test_a_declared_length_over_10_mb_is_a_413_before_the_body_is_read(api):
    status, _, answer = _raw(api, b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 20000000\r\n\r\n")

    assert status == 413
    assert json.loads(answer)["status"] == 413


def test_a_request_line_http_cannot_parse_is_a_400_problem(api):
    status, headers, answer = _raw(api, b"NOT A REQUEST LINE AT ALL\r\n\r\n")

    assert status == 400
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(answer)["status"] == 400


def test_a_method_no_route_has_is_the_missing_route_answer(api):
    status, headers, answer = _raw(api, b"PROPFIND /echo HTTP/1.1\r\nHost: localhost\r\n\r\n")

    assert status == 403
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(answer)["detail"] == "No route matches this method and path."


def test_well_framed_bodies_still_arrive_whole(api):
    # Given a chunked body with an extension and a trailer, and a plain one
    chunked = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    head = b"POST /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"

    # When they are sent
    chunked_status, _, chunked_body = _raw(api, head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
    plain_status, _, plain_body = _raw(api, head + b"Content-Length: 11\r\n\r\nhello world")

    # Then the function gets them as sent
    assert (chunked_status, chunked_body) == (200, b"hello world")
    assert (plain_status, plain_body) == (200, b"hello world")
