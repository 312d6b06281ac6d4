"""The local API Gateway: real HTTP in, API Gateway REST proxy events to the real handlers, back out."""

import base64
import http.client
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from sandbox.stack.pytest_plugin import RunningStack
from tests.stack.support import SAM_REFERENCE_EVENT

pytestmark = pytest.mark.xdist_group("local-stack-fixture")


def _echoed_event(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()["event"]


# Maps whose keys are request data (header names, parameters), not part of the event's shape.
_DATA_MAPS = {"headers", "multiValueHeaders", "queryStringParameters", "multiValueQueryStringParameters"}
_DATA_MAPS |= {"pathParameters", "stageVariables"}


def _same_shape(reference: Any, actual: Any, where: str = "event") -> list[str]:
    """Keys of the reference that are missing, or whose value has another JSON type."""
    problems: list[str] = []
    if where.rpartition(".")[2] in _DATA_MAPS:
        return [] if isinstance(actual, type(reference)) else [f"{where}: expected an object"]
    if isinstance(reference, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        for key, value in reference.items():
            if key not in actual:
                problems.append(f"{where}.{key}: missing")
            elif value is not None and actual[key] is not None:
                problems += _same_shape(value, actual[key], f"{where}.{key}")
    elif reference is not None and not isinstance(actual, type(reference)):
        problems.append(f"{where}: expected {type(reference).__name__}, got {type(actual).__name__}")
    return problems


def test_a_route_with_path_and_query_parameters_gets_an_api_gateway_proxy_event(
    fixture_stack: RunningStack,
) -> None:
    # Given a GET route /items/{item_id} on an Api with stage v1 and stage variables
    url = f"{fixture_stack.api_url}/items/sku%20123?colour=red&size=m&size=l&empty="

    # When a browser-like client calls it
    event = _echoed_event(requests.get(url, headers={"User-Agent": "test-agent/1", "X-Trace": "t-1"}, timeout=30))

    # Then the handler got the event API Gateway would have sent
    assert event["resource"] == "/items/{item_id}"
    assert event["path"] == "/items/sku 123"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"item_id": "sku 123"}
    assert event["queryStringParameters"] == {"colour": "red", "size": "l", "empty": ""}
    assert event["multiValueQueryStringParameters"] == {"colour": ["red"], "size": ["m", "l"], "empty": [""]}
    assert event["stageVariables"] == {"flavour": "local"}
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    assert event["headers"]["X-Trace"] == "t-1"
    assert event["multiValueHeaders"]["X-Trace"] == ["t-1"]
    context = event["requestContext"]
    assert (context["stage"], context["httpMethod"], context["resourcePath"]) == ("v1", "GET", "/items/{item_id}")
    assert context["path"] == "/v1/items/sku 123"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "test-agent/1"
    assert context["requestId"]


def test_the_event_has_the_shape_of_sam_generate_event(fixture_stack: RunningStack) -> None:
    # Given the event `sam local generate-event apigateway aws-proxy` produces
    reference = json.loads(SAM_REFERENCE_EVENT.read_text())

    # When a request with a body, a query string and path parameters goes through the gateway
    response = requests.post(
        f"{fixture_stack.api_url}/files/path/to/resource?foo=bar",
        data=b'{"test":"body"}',
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    event = _echoed_event(response)

    # Then every key of the reference is there, with the same JSON type
    assert _same_shape(reference, event) == []
    assert event["pathParameters"] == {"proxy": "path/to/resource"}
    assert event["body"] == '{"test":"body"}'


def test_multi_value_headers_keep_every_value(fixture_stack: RunningStack) -> None:
    # Given a client that sends the same header twice (requests cannot)
    address = urlsplit(fixture_stack.api_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.putrequest("GET", "/items/1")
    connection.putheader("X-Tag", "first")
    connection.putheader("X-Tag", "second")
    connection.endheaders()

    # When the gateway turns it into an event
    response = connection.getresponse()
    event = json.loads(response.read())["event"]
    connection.close()

    # Then the single-value map has the last value and the multi-value map has both
    assert event["headers"]["X-Tag"] == "second"
    assert event["multiValueHeaders"]["X-Tag"] == ["first", "second"]


def test_a_form_body_arrives_as_text(fixture_stack: RunningStack) -> None:
    # Given an embed-form style POST
    form = {"EMAIL": "ada@example.org", "FNAME": "Ada", "tags": "a b"}

    # When it is posted form-encoded
    event = _echoed_event(requests.post(f"{fixture_stack.api_url}/forms", data=form, timeout=30))

    # Then the handler sees the encoded text, not base64
    assert event["isBase64Encoded"] is False
    assert event["body"] == "EMAIL=ada%40example.org&FNAME=Ada&tags=a+b"
    assert event["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_a_binary_media_type_arrives_base64_encoded(fixture_stack: RunningStack) -> None:
    # Given bytes that are not UTF-8, sent as one of the Api's BinaryMediaTypes
    payload = bytes(range(256))

    # When they are uploaded
    event = _echoed_event(
        requests.post(
            f"{fixture_stack.api_url}/items/7/upload",
            data=payload,
            headers={"Content-Type": "image/png"},
            timeout=30,
        )
    )

    # Then the body is base64 and decodes to the same bytes
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_the_proxy_response_becomes_the_http_response(fixture_stack: RunningStack) -> None:
    # When the echo handler answers with headers and multi-value headers
    response = requests.get(f"{fixture_stack.api_url}/items/1", timeout=30)

    # Then both reach the client, plus API Gateway's request id
    assert response.headers["X-Echo"] == "single"
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers["x-amzn-RequestId"]
    assert response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nowhere"), ("DELETE", "/items/1"), ("GET", "/items/1/upload/extra")],
)
def test_an_unknown_route_is_403_missing_authentication_token(
    fixture_stack: RunningStack, method: str, path: str
) -> None:
    response = requests.request(method, f"{fixture_stack.api_url}{path}", timeout=30)

    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


@pytest.mark.parametrize("query", ["explode=yes", "malformed=yes"])
def test_a_failing_or_malformed_handler_is_502(fixture_stack: RunningStack, query: str) -> None:
    response = requests.get(f"{fixture_stack.api_url}/items/1?{query}", timeout=30)

    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}


def test_cors_preflight_from_an_allowed_origin_passes(fixture_stack: RunningStack) -> None:
    # Given an origin from the AllowedOrigins comma list of the Api's Cors
    headers = {"Origin": "https://www.example.com", "Access-Control-Request-Method": "GET"}

    # When the browser sends its preflight
    response = requests.options(f"{fixture_stack.api_url}/items/1", headers=headers, timeout=30)

    # Then the gateway allows it with the template's settings
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert response.headers["Access-Control-Allow-Methods"] == "GET,OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type,X-Api-Key"
    assert response.headers["Access-Control-Max-Age"] == "600"


def test_cors_preflight_from_another_origin_fails(fixture_stack: RunningStack) -> None:
    headers = {"Origin": "https://evil.example.net", "Access-Control-Request-Method": "GET"}

    response = requests.options(f"{fixture_stack.api_url}/items/1", headers=headers, timeout=30)

    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_concurrent_requests_are_served_concurrently(fixture_stack: RunningStack) -> None:
    # Given three requests that each keep their handler busy for 1.5 s
    url = f"{fixture_stack.api_url}/items/slow?sleep=1.5"

    # When they arrive at the same time
    with ThreadPoolExecutor(max_workers=3) as executor:
        responses = list(executor.map(lambda _: requests.get(url, timeout=30), range(3)))

    # Then their handlers ran at the same time instead of queueing behind each other (however
    # long a loaded machine takes to start them, served in turn they could never overlap)
    assert [response.status_code for response in responses] == [200, 200, 200]
    ran = sorted(tuple(response.json()["ran"]) for response in responses)
    most_at_once = max(sum(start <= moment < end for start, end in ran) for moment, _ in ran)
    assert most_at_once > 1, f"the handlers ran one after another: {ran}"
