"""The local API Gateway: a threaded HTTP server in front of the template's ``Api`` routes.

Each connection gets a thread, so concurrent requests reach the function pools concurrently.
CORS preflights are answered by the gateway itself, as the mock integration SAM generates from
an Api's ``Cors`` property does; other responses carry only the headers the function sets.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.stack.apigw_events import (
    INTERNAL_SERVER_ERROR,
    MISSING_AUTHENTICATION_TOKEN,
    HttpRequest,
    HttpResponse,
    MalformedProxyResponse,
    RouteTable,
    build_proxy_event,
    http_response_from_proxy,
)
from sandbox.stack.local_config import API_PORT, advertised_url
from sandbox.stack.template import ApiRoute, ApiSpec, CorsConfig
from sandbox.stack.waf import WebAcl
from sandbox.stack.workers import InvocationResult, LogSink

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request size limit
MAX_CHUNK_LINE = 4096  # a chunk-size line (with extensions) or a trailer
MAX_TRAILER_LINES = 100
_DIGITS = re.compile(r"[0-9]{1,19}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
Invoker = Callable[[str, Any], InvocationResult]


def _json_response(status: int, body: Mapping[str, Any], error_type: str | None = None) -> HttpResponse:
    headers = [("Content-Type", "application/json")]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    return HttpResponse(status, headers, json.dumps(body).encode())


_CONTEXT_VARIABLE = re.compile(r"\$context\.[A-Za-z.]+")


def gateway_error(
    api: ApiSpec | None, response_type: str, status: int, message: str, error_type: str, request_id: str
) -> HttpResponse:
    """An error API Gateway answers itself, worded by the Api's ``GatewayResponses`` if it has any
    (the specific type, else DEFAULT_4XX/DEFAULT_5XX), else API Gateway's ``{"message": ...}``."""
    responses = api.gateway_responses if api is not None else {}
    fallback = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
    custom = responses.get(response_type) or responses.get(fallback)
    template = custom.templates.get("application/json") if custom is not None else None
    if custom is None or template is None:
        response = _json_response(status, {"message": message}, error_type)
    else:
        status = custom.status_code or status
        values = {
            "$context.error.responseType": response_type,
            "$context.error.statusCode": str(status),
            "$context.error.message": message,
            "$context.error.messageString": json.dumps(message),
            "$context.error.validationErrorString": "",
            "$context.requestId": request_id,
        }
        body = _CONTEXT_VARIABLE.sub(lambda match: values.get(match.group(0), ""), template)
        # A Content-Type among the response parameters replaces API Gateway's application/json.
        mapped = {name: value for name, value in custom.headers.items() if name.lower() != "content-type"}
        content_type = next(
            (value for name, value in custom.headers.items() if name.lower() == "content-type"), "application/json"
        )
        headers = [("Content-Type", content_type), ("x-amzn-ErrorType", error_type), *mapped.items()]
        response = HttpResponse(status, headers, body.encode())
    response.headers.append(("x-amzn-RequestId", request_id))
    return response


class ApiGateway:
    """Routes requests to functions; knows nothing about sockets."""

    def __init__(
        self,
        routes: list[ApiRoute],
        apis: Mapping[str, ApiSpec],
        invoke: Invoker,
        log_sink: LogSink,
        firewalls: Mapping[str, WebAcl] | None = None,
    ) -> None:
        self.routes = RouteTable.build(routes)
        self.apis = apis
        self.invoke = invoke
        self.log_sink = log_sink
        self.firewalls = dict(firewalls or {})  # Api logical id -> its AWS WAF web ACL (sandbox/stack/waf.py)

    def _only_api(self) -> ApiSpec | None:
        """The Api whose gateway responses word an error that matched no route."""
        return next(iter(self.apis.values())) if len(self.apis) == 1 else None

    def framing_error(self, status: int, message: str) -> HttpResponse:
        """A request that could not be read (its framing, its request line): 413 for a body over
        the limit, else a 400 (or the status http.server chose), worded by the gateway responses."""
        if status == 413:
            return gateway_error(
                self._only_api(), "REQUEST_TOO_LARGE", 413, "Request Too Long", "RequestTooLarge", str(uuid.uuid4())
            )
        if status == HTTPStatus.NOT_IMPLEMENTED:  # a method no route has: API Gateway's answer for that
            return self._missing_token(self._only_api())
        response_type = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
        return gateway_error(self._only_api(), response_type, status, message, "BadRequestException", str(uuid.uuid4()))

    def _missing_token(self, api: ApiSpec | None) -> HttpResponse:
        return gateway_error(
            api,
            "MISSING_AUTHENTICATION_TOKEN",
            403,
            MISSING_AUTHENTICATION_TOKEN["message"],
            "MissingAuthenticationTokenException",
            str(uuid.uuid4()),
        )

    def handle(self, request: HttpRequest, host_header: str) -> HttpResponse:
        blocked = self._firewall(request)
        if blocked is not None:
            self.log_sink("api", f"{request.method} {request.raw_path} from {request.source_ip}: blocked by AWS WAF")
            return blocked
        return self._handle(request, host_header)

    def _firewall(self, request: HttpRequest) -> HttpResponse | None:
        """AWS WAF sees every request to the stage before API Gateway routes it."""
        if not self.firewalls:
            return None
        found = self.routes.find(request.method, request.raw_path)
        only = self._only_api()
        api_id = found[0].api_id if found is not None else only.logical_id if only is not None else None
        acl = self.firewalls.get(api_id) if api_id is not None else None
        return acl.check(request) if acl is not None else None

    def _handle(self, request: HttpRequest, host_header: str) -> HttpResponse:
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return gateway_error(
                self._only_api(), "REQUEST_TOO_LARGE", 413, "Request Too Long", "RequestTooLarge", str(uuid.uuid4())
            )
        found = self.routes.find(request.method, request.raw_path)
        if found is None and request.method == "OPTIONS":
            return self._preflight(request)
        if found is None:
            return self._missing_token(self._only_api())
        route, path_parameters = found
        api = self.apis[route.api_id]
        event = build_proxy_event(request, route, path_parameters, api, host_header)
        result = self.invoke(route.function_id, event)
        request_id = event["requestContext"]["requestId"]
        if result.throttled:
            # Lambda refused the invocation (reserved concurrency in use): API Gateway answers 500.
            self.log_sink("api", f"{route.function_id} throttled; answering 500")
            return gateway_error(
                api, "DEFAULT_5XX", 500, INTERNAL_SERVER_ERROR["message"], "InternalServerErrorException", request_id
            )
        failure: str | None = None
        if result.error:
            failure = f"{route.function_id} failed: {result.payload.get('errorType')}"
        else:
            try:
                response = http_response_from_proxy(result.payload)
            except MalformedProxyResponse as error:
                failure = f"{route.function_id}: malformed Lambda proxy response ({error})"
        if failure is not None:
            self.log_sink("api", f"{failure}; answering 502")
            return gateway_error(
                api,
                "INTEGRATION_FAILURE",
                502,
                INTERNAL_SERVER_ERROR["message"],
                "InternalServerErrorException",
                request_id,
            )
        response.headers.append(("x-amzn-RequestId", request_id))
        return response

    def _preflight(self, request: HttpRequest) -> HttpResponse:
        candidates = self.routes.candidates(request.raw_path)
        if not candidates:
            return self._missing_token(self._only_api())
        best_path = candidates[0][0].route.path
        resource_routes = [compiled.route for compiled, _ in candidates if compiled.route.path == best_path]
        api = self.apis[resource_routes[0].api_id]
        cors = api.cors
        if cors is None:
            return self._missing_token(api)
        origin = request.header("Origin")
        if origin is not None and not cors.origin_is_allowed(origin):
            # API Gateway's mock answers with its configured origin and the browser refuses;
            # answering 403 without allow-headers makes the refusal visible to curl users too.
            return _json_response(403, {"message": f"Origin {origin} is not in the API's Cors AllowOrigin"})
        return HttpResponse(200, _preflight_headers(cors, origin, resource_routes), b"")


def _preflight_headers(cors: CorsConfig, origin: str | None, routes: list[ApiRoute]) -> list[tuple[str, str]]:
    if "*" in cors.allow_origins:
        allow_origin = "*"
    elif origin is not None:
        allow_origin = origin  # one allowed origin echoed: browsers accept no list
    else:
        allow_origin = ",".join(cors.allow_origins)
    methods = {route.method for route in routes}
    default_methods = ALL_METHODS if "ANY" in methods else sorted(methods | {"OPTIONS"})
    headers = [
        ("Content-Type", "application/json"),
        ("Access-Control-Allow-Origin", allow_origin),
        ("Access-Control-Allow-Methods", cors.allow_methods or ",".join(default_methods)),
    ]
    if allow_origin != "*":
        headers.append(("Vary", "Origin"))
    if cors.allow_headers:
        headers.append(("Access-Control-Allow-Headers", cors.allow_headers))
    if cors.max_age:
        headers.append(("Access-Control-Max-Age", cors.max_age))
    if cors.allow_credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    return headers


class BadFraming(Exception):
    """A request whose body cannot be read as its headers frame it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like API Gateway
    # One buffered write per answer and no Nagle: otherwise headers and body leave in two
    # segments and the client's delayed ACK adds ~40 ms to every keep-alive request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _GatewayHttpServer
    # A client that stops sending mid-request gets an answer instead of holding a thread for ever
    # (and an idle keep-alive connection is closed after this long).
    timeout = 60

    def _read_body(self) -> bytes:
        """The body as the framing headers say; :class:`BadFraming` when they cannot be read
        (after which the connection cannot be trusted to find the next request)."""
        transfer_encoding = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if transfer_encoding:
            if [value.strip().lower() for value in transfer_encoding] != ["chunked"] or lengths:
                raise BadFraming(400, "Transfer-Encoding must be chunked alone, without a Content-Length.")
            return self._read_chunks()
        if not lengths:
            return b""
        if len(set(lengths)) > 1 or not _DIGITS.fullmatch(lengths[0].strip()):
            raise BadFraming(400, "Content-Length must be one non-negative whole number.")
        length = int(lengths[0].strip())
        if length > MAX_PAYLOAD_BYTES:
            raise BadFraming(413, "Request Too Long")
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise BadFraming(400, "The body is shorter than its Content-Length.")
        return body

    def _read_chunks(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(MAX_CHUNK_LINE + 1)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not _HEX.fullmatch(size_text):
                raise BadFraming(400, "A chunk size is not a hexadecimal number on its own line.")
            size = int(size_text, 16)
            total += size
            if total > MAX_PAYLOAD_BYTES:
                raise BadFraming(413, "Request Too Long")
            if size == 0:
                for _ in range(MAX_TRAILER_LINES):  # trailers, then the empty line that ends them
                    trailer = self.rfile.readline(MAX_CHUNK_LINE + 1)
                    if trailer in (b"\r\n", b"\n"):
                        return b"".join(chunks)
                    if not trailer.endswith(b"\n"):
                        break
                raise BadFraming(400, "The chunked body does not end with an empty line.")
            data = self.rfile.read(size)
            if len(data) < size or self.rfile.readline(MAX_CHUNK_LINE + 1) not in (b"\r\n", b"\n"):
                raise BadFraming(400, "A chunk is shorter or longer than its size.")
            chunks.append(data)

    def _handle(self) -> None:
        started = time.monotonic()
        raw_path, _, raw_query = self.path.partition("?")
        try:
            body = self._read_body()
        except (BadFraming, TimeoutError) as failure:
            # API Gateway answers a request it cannot frame itself; the connection is then closed,
            # since where the next request starts is unknown.
            status, message = (
                (failure.status, failure.message)
                if isinstance(failure, BadFraming)
                else (400, "The body did not arrive in time.")
            )
            self.close_connection = True
            self._answer(self.server.gateway.framing_error(status, message), close=True)
            self.server.gateway.log_sink("api", f"{self.command} {self.path} {status}: {message}")
            return
        request = HttpRequest(
            method=self.command,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        bound_host, bound_port = self.server.server_address[:2]
        host = self.headers.get("Host") or f"{bound_host!s}:{bound_port}"
        response = self.server.gateway.handle(request, host)
        self._answer(response)
        elapsed_ms = (time.monotonic() - started) * 1000
        self.server.gateway.log_sink("api", f"{self.command} {self.path} {response.status} {elapsed_ms:.0f} ms")

    def _answer(self, response: HttpResponse, *, close: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are logged once, with their outcome, in ``_handle``."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What http.server cannot parse (a request line, a header): a gateway problem, closed.
        An unparsed request line leaves HTTP/0.9, which has no status line: answer in HTTP/1.1."""
        self.close_connection = True
        self.request_version = self.protocol_version
        self._answer(self.server.gateway.framing_error(code, message or HTTPStatus(code).phrase), close=True)


class _GatewayHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a burst of new clients overflowed it and
    # some saw their connection reset, which API Gateway never does.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], gateway: ApiGateway) -> None:
        self.gateway = gateway
        super().__init__(address, _RequestHandler)


class ApiServer:
    """Serves an ``ApiGateway`` on ``host:port`` (0 picks a free port) in a background thread."""

    def __init__(self, gateway: ApiGateway, host: str, port: int) -> None:
        try:
            self._server = _GatewayHttpServer((host, port), gateway)
        except OSError as error:
            raise OSError(
                f"the API cannot listen on {host}:{port} ({error.strerror}); set {API_PORT.env_var} to another port"
            ) from error
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return advertised_url(str(host), int(port))

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
