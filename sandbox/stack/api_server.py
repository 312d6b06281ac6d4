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
from sandbox.stack.workers import InvocationResult, LogSink

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request size limit
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
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)]
        headers += list(custom.headers.items())
        response = HttpResponse(status, headers, body.encode())
    response.headers.append(("x-amzn-RequestId", request_id))
    return response


class ApiGateway:
    """Routes requests to functions; knows nothing about sockets."""

    def __init__(self, routes: list[ApiRoute], apis: Mapping[str, ApiSpec], invoke: Invoker, log_sink: LogSink) -> None:
        self.routes = RouteTable.build(routes)
        self.apis = apis
        self.invoke = invoke
        self.log_sink = log_sink

    def _only_api(self) -> ApiSpec | None:
        """The Api whose gateway responses word an error that matched no route."""
        return next(iter(self.apis.values())) if len(self.apis) == 1 else None

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


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like API Gateway
    # One buffered write per answer and no Nagle: otherwise headers and body leave in two
    # segments and the client's delayed ACK adds ~40 ms to every keep-alive request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _GatewayHttpServer

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        started = time.monotonic()
        raw_path, _, raw_query = self.path.partition("?")
        request = HttpRequest(
            method=self.command,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=list(self.headers.items()),
            body=self._read_body(),
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        bound_host, bound_port = self.server.server_address[:2]
        host = self.headers.get("Host") or f"{bound_host!s}:{bound_port}"
        response = self.server.gateway.handle(request, host)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        elapsed_ms = (time.monotonic() - started) * 1000
        self.server.gateway.log_sink("api", f"{self.command} {self.path} {response.status} {elapsed_ms:.0f} ms")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are logged once, with their outcome, in ``_handle``."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        body = json.dumps({"message": message or HTTPStatus(code).phrase}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


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
