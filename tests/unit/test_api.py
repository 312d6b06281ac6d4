"""create_app(): routing, CORS, and the one place that turns domain errors into RFC 7807 answers."""

import json

import pytest

from chimpbridge import settings
from chimpbridge.api import Request, Response, create_app
from chimpbridge.errors import (
    ConfigurationError,
    FieldError,
    InvalidRequest,
    MailchimpApiError,
    PayloadTooLarge,
    Rejected,
    Unauthorized,
    UnsupportedMediaType,
)
from chimpbridge.observability import logger
from tests.support.functions import LambdaContext, event, load_function

ERRORS = {
    "/invalid": InvalidRequest("Check the highlighted fields.", [FieldError("email", "Enter a valid email address.")]),
    "/unauthorized": Unauthorized("wrong key abc"),
    "/rejected": Rejected("signup-forgotten", "This address was removed at its owner's request."),
    "/transient": MailchimpApiError("mailchimp", 503, "Service Unavailable", detail="secret internals"),
    "/permanent": MailchimpApiError("mailchimp", 400, "Invalid Resource", detail="raw upstream text"),
    "/config": ConfigurationError("MAILCHIMP_SECRET_ARN is not set"),
    "/too-large": PayloadTooLarge("A signup can be at most 16384 bytes."),
    "/media-type": UnsupportedMediaType("Send the signup as application/json."),
    "/boom": RuntimeError("Traceback: password=hunter2"),
}


def raising(error):
    def route(request):
        raise error

    return route


@pytest.fixture
def app(monkeypatch):
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://shop.example.org,https://blog.example.org")
    settings.clear()
    logger.set_correlation_id(None)  # an earlier test's invocation may have left its id on the logger
    app = create_app()
    for path, error in ERRORS.items():
        app.get(path)(raising(error))
    yield app
    settings.clear()


def call(app, path, method="GET", headers=None):
    request = event("health/get.json")
    request.update(path=path, resource=path, httpMethod=method, headers={**request["headers"], **(headers or {})})
    request["multiValueHeaders"] = {name: [value] for name, value in request["headers"].items()}
    response = app.resolve(request, LambdaContext())
    return response, json.loads(response["body"]) if response.get("body") else None


@pytest.mark.parametrize(
    ("path", "status", "type_"),
    [
        ("/invalid", 422, "invalid-request"),
        ("/unauthorized", 401, "unauthorized"),
        ("/rejected", 422, "signup-forgotten"),
        ("/transient", 503, "upstream-unavailable"),
        ("/permanent", 502, "upstream-error"),
        ("/config", 500, "internal-error"),
        ("/too-large", 413, "payload-too-large"),
        ("/media-type", 415, "unsupported-media-type"),
        ("/boom", 500, "internal-error"),
        ("/nowhere", 404, "not-found"),
    ],
)
def test_errors_become_problem_json(app, path, status, type_):
    response, body = call(app, path)
    assert response["statusCode"] == status
    assert response["multiValueHeaders"]["Content-Type"] == ["application/problem+json"]
    assert body["type"] == f"urn:chimpbridge:problem:{type_}"
    assert body["status"] == status
    assert body["title"] and body["detail"]


@pytest.mark.parametrize("path", ["/transient", "/permanent", "/config", "/boom", "/unauthorized"])
def test_no_internals_reach_the_client(app, path):
    _, body = call(app, path)
    text = json.dumps(body)
    for secret_text in ("secret internals", "raw upstream text", "MAILCHIMP_SECRET_ARN", "hunter2", "abc"):
        assert secret_text not in text


def test_500_carries_a_correlation_id(app):
    _, body = call(app, "/boom")
    assert body["correlation_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


def test_field_errors_are_listed(app):
    _, body = call(app, "/invalid")
    assert body["errors"] == [{"field": "email", "message": "Enter a valid email address."}]


def test_preflight_from_an_allowed_origin(app):
    response, _ = call(
        app, "/invalid", "OPTIONS", {"Origin": "https://blog.example.org", "Access-Control-Request-Method": "GET"}
    )
    assert response["statusCode"] == 204
    assert response["multiValueHeaders"]["Access-Control-Allow-Origin"] == ["https://blog.example.org"]


def test_no_cors_headers_for_another_origin(app):
    response, _ = call(app, "/invalid", headers={"Origin": "https://evil.example.net"})
    assert "Access-Control-Allow-Origin" not in response["multiValueHeaders"]
    # and the answer still says it depends on the origin, for caches
    assert response["multiValueHeaders"]["Vary"] == ["Origin"]


def test_health_function_answers_its_sample_event():
    # Given the health function loaded as Lambda loads it
    health = load_function("health")
    # When it gets the sample event
    response = health.lambda_handler(event("health/get.json"), LambdaContext())
    # Then it answers 200 with its version
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["status"] == "ok"


def test_path_parameters_are_passed_by_name(app):
    # Given a route with a parameter
    app.post("/hooks/<hook>")(lambda request, hook: Response(202, f'"{hook}"'))
    # When it is called
    response, body = call(app, "/hooks/registration", "POST")
    # Then the handler got the path's value
    assert (response["statusCode"], body) == (202, "registration")


def test_another_method_on_a_known_path_is_not_found(app):
    response, body = call(app, "/invalid", "DELETE")
    assert response["statusCode"] == 404
    assert body["type"] == "urn:chimpbridge:problem:not-found"


def test_a_base64_body_is_decoded_and_a_broken_one_is_a_problem(app):
    # Given a route that echoes its body
    app.post("/echo")(lambda request: Response(200, request.body().decode()))
    request = event("health/get.json")
    request.update(path="/echo", httpMethod="POST", isBase64Encoded=True, body="aGVsbG8=")
    # When API Gateway sends it base64 encoded, the route reads the bytes sent
    assert app.resolve(request, LambdaContext())["body"] == "hello"
    # And an encoding that is not base64 is the client's problem, not a 500
    request["body"] = "not base64!"
    assert app.resolve(request, LambdaContext())["statusCode"] == 422


def test_request_headers_are_read_case_insensitively():
    request = Request({"headers": {"Content-Type": "application/json"}, "requestContext": {"requestId": "r-1"}})
    assert (request.header("content-TYPE"), request.request_id) == ("application/json", "r-1")


def test_answers_for_an_allowed_origin_carry_cors_headers(app):
    response, _ = call(app, "/invalid", headers={"Origin": "https://shop.example.org"})
    headers = response["multiValueHeaders"]
    assert headers["Access-Control-Allow-Origin"] == ["https://shop.example.org"]
    assert headers["Vary"] == ["Origin"]
