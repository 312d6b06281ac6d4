"""API Gateway REST semantics without the network: route matching, proxy events, proxy responses.

The event has the shape of ``sam local generate-event apigateway aws-proxy`` (a copy is kept in
tests/stack/fixtures/ and the tests compare against it); the response rules are those of a
Lambda proxy integration.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from sandbox.stack.intrinsics import LOCAL_ACCOUNT_ID
from sandbox.stack.template import ApiRoute, ApiSpec

MISSING_AUTHENTICATION_TOKEN = {"message": "Missing Authentication Token"}
INTERNAL_SERVER_ERROR = {"message": "Internal server error"}

# Segment kinds, most specific first: API Gateway prefers a literal over {param} over {proxy+}.
_LITERAL, _PARAMETER, _GREEDY = 0, 1, 2


@dataclass(frozen=True)
class CompiledRoute:
    route: ApiRoute
    segments: tuple[tuple[int, str], ...]

    @classmethod
    def compile(cls, route: ApiRoute) -> CompiledRoute:
        segments: list[tuple[int, str]] = []
        for part in _split_path(route.path):
            if part.startswith("{") and part.endswith("+}"):
                segments.append((_GREEDY, part[1:-2]))
            elif part.startswith("{") and part.endswith("}"):
                segments.append((_PARAMETER, part[1:-1]))
            else:
                segments.append((_LITERAL, part))
        return cls(route, tuple(segments))

    def match(self, parts: Sequence[str]) -> dict[str, str] | None:
        parameters: dict[str, str] = {}
        for index, (kind, name) in enumerate(self.segments):
            if kind == _GREEDY:
                if index >= len(parts):
                    return None
                parameters[name] = "/".join(parts[index:])
                return parameters
            if index >= len(parts):
                return None
            if kind == _LITERAL and parts[index] != name:
                return None
            if kind == _PARAMETER:
                parameters[name] = parts[index]
        return parameters if len(parts) == len(self.segments) else None

    def specificity(self) -> tuple[int, ...]:
        return tuple(kind for kind, _ in self.segments)


def _split_path(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


@dataclass
class RouteTable:
    compiled: list[CompiledRoute] = field(default_factory=list)

    @classmethod
    def build(cls, routes: Iterable[ApiRoute]) -> RouteTable:
        return cls([CompiledRoute.compile(route) for route in routes])

    def candidates(self, path: str) -> list[tuple[CompiledRoute, dict[str, str]]]:
        """Routes whose path matches, most specific first (method not considered)."""
        parts = [unquote(part) for part in _split_path(path)]
        matched = [(route, params) for route in self.compiled if (params := route.match(parts)) is not None]
        return sorted(matched, key=lambda item: item[0].specificity())

    def find(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
        candidates = self.candidates(path)
        if not candidates:
            return None
        # Only the most specific resource is considered, as in API Gateway; then method beats ANY.
        best_path = candidates[0][0].route.path
        same_resource = [(route, params) for route, params in candidates if route.route.path == best_path]
        for wanted in (method, "ANY"):
            for compiled, params in same_resource:
                if compiled.route.method == wanted:
                    return compiled.route, params
        return None


@dataclass(frozen=True)
class HttpRequest:
    method: str
    raw_path: str  # path as sent, without the query string
    raw_query: str
    headers: Sequence[tuple[str, str]]  # in order, duplicates kept, case as sent
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[-1] if values else None


def _multi_value(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value  # API Gateway keeps the last value in the single-value map
        multi.setdefault(key, []).append(value)
    return (single or None), (multi or None)


def is_binary(content_type: str | None, binary_media_types: Sequence[str]) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";")[0].strip().lower()
    return any(fnmatch.fnmatchcase(media_type, pattern.lower()) for pattern in binary_media_types)


def build_proxy_event(
    request: HttpRequest, route: ApiRoute, path_parameters: dict[str, str], api: ApiSpec, host_header: str
) -> dict[str, Any]:
    """The REST API (v1) proxy event API Gateway would hand the function."""
    headers = list(request.headers)
    if not any(key.lower() == "x-forwarded-for" for key, _ in headers):
        headers += [("X-Forwarded-For", request.source_ip)]
    headers += [("X-Forwarded-Port", host_header.rpartition(":")[2] or "80"), ("X-Forwarded-Proto", "http")]
    single_headers, multi_headers = _multi_value(headers)
    query_pairs = parse_qsl(request.raw_query, keep_blank_values=True)
    single_query, multi_query = _multi_value(query_pairs)

    body: str | None = None
    is_base64 = False
    if request.body:
        binary = is_binary(request.header("Content-Type"), api.binary_media_types)
        if not binary:
            try:
                body = request.body.decode("utf-8")
            except UnicodeDecodeError:
                binary = True  # undecodable bytes cannot travel as a JSON string
        if binary:
            body = base64.b64encode(request.body).decode("ascii")
            is_base64 = True

    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    path = unquote(request.raw_path) or "/"
    return {
        "body": body,
        "resource": route.path,
        "path": path,
        "httpMethod": request.method,
        "isBase64Encoded": is_base64,
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_parameters or None,
        "stageVariables": dict(api.stage_variables) if api.stage_variables else None,
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT_ID,
            "resourceId": uuid.uuid5(uuid.NAMESPACE_URL, route.path).hex[:6],
            "stage": api.stage_name,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "accessKey": None,
                "sourceIp": request.source_ip,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": request.header("User-Agent"),
                "user": None,
            },
            "path": f"/{api.stage_name}{path}",
            "resourcePath": route.path,
            "httpMethod": request.method,
            "apiId": api.logical_id.lower()[:10],
            "protocol": request.protocol,
            "domainName": host_header,
            "domainPrefix": host_header.split(".", maxsplit=1)[0].split(":", maxsplit=1)[0],
        },
    }


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class MalformedProxyResponse(ValueError):
    """The handler's return value is not a valid proxy response (API Gateway answers 502)."""


def http_response_from_proxy(result: Any) -> HttpResponse:
    """Turn a handler's proxy response into HTTP, rejecting what API Gateway rejects."""
    if not isinstance(result, dict):
        raise MalformedProxyResponse(f"expected an object, got {type(result).__name__}")
    unexpected = set(result) - {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded", "cookies"}
    if unexpected:
        raise MalformedProxyResponse(f"unexpected keys {sorted(unexpected)}")
    status = result.get("statusCode", 200)
    if not isinstance(status, int) and not (isinstance(status, str) and status.isdigit()):
        raise MalformedProxyResponse(f"statusCode {status!r} is not an integer")
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedProxyResponse("body must be a string")
    payload = (body or "").encode("utf-8")
    if result.get("isBase64Encoded") and body:
        try:
            payload = base64.b64decode(body, validate=True)
        except binascii.Error as error:
            raise MalformedProxyResponse("isBase64Encoded body is not base64") from error

    headers: list[tuple[str, str]] = []
    multi_value = result.get("multiValueHeaders") or {}
    for name, values in multi_value.items():
        headers += [(name, str(value)) for value in values]
    for name, value in (result.get("headers") or {}).items():
        if name not in multi_value:
            headers.append((name, str(value)))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return HttpResponse(int(status), headers, payload)
