"""The signed AWS JSON call that Secrets Manager reads and the signup limit share: which answers
it tries again and which it hands back, over real sockets to a scripted server."""

import pytest
import urllib3

from chimpbridge import aws_json
from chimpbridge.credentials import Credentials
from chimpbridge.errors import UpstreamError
from tests.support.scripted_http import Answer, ScriptedServer

KEYS = Credentials("AKIDEXAMPLE", "secret", "token")
# No pause between attempts: the tests wait for nothing.
API = aws_json.JsonApi(
    service="dynamodb",
    content_type="application/x-amz-json-1.0",
    connect_timeout=1.0,
    read_timeout=2.0,
    min_budget=0.2,
    backoff=0.0,
    throttled=frozenset({"ThrottlingException"}),
    unnamed_error="error",
)


def call(server: ScriptedServer) -> aws_json.Answer:
    return aws_json.call(
        urllib3.PoolManager(),
        API,
        url=server.url,
        region="eu-west-1",
        target="DynamoDB_20120810.GetItem",
        body=b"{}",
        keys=KEYS,
    )


def test_a_throttled_answer_is_tried_again_and_the_success_returned():
    # Given a service that throttles the first request
    throttled = Answer(400, {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException"})
    with ScriptedServer(throttled, Answer(200, {"Item": {"pk": {"S": "a"}}})) as server:
        # When it is called
        answer = call(server)
    # Then the second answer came back, after two signed requests
    assert (answer.status, answer.payload) == (200, {"Item": {"pk": {"S": "a"}}})
    assert len(server.requests) == 2
    seen = server.requests[0].headers
    assert seen["x-amz-target"] == "DynamoDB_20120810.GetItem"
    assert seen["content-type"] == "application/x-amz-json-1.0"
    assert seen["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")


def test_a_final_refusal_is_handed_back_without_another_try():
    # Given a service that refuses the request for a reason another try would not change
    refused = Answer(400, {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"})
    with ScriptedServer(refused) as server:
        # When it is called
        answer = call(server)
    # Then the refusal is the caller's to read, named without its namespace
    assert (answer.status, answer.error_type) == (400, "ConditionalCheckFailedException")
    assert len(server.requests) == 1


def test_server_errors_on_every_attempt_raise_an_upstream_error():
    # Given a service that answers 503 without naming an error
    # When it is called
    with ScriptedServer(Answer(503, {})) as server, pytest.raises(UpstreamError) as raised:
        call(server)
    # Then every attempt was made and the failure names the service and the last status
    assert len(server.requests) == API.attempts
    assert (raised.value.service, raised.value.status, raised.value.summary) == ("dynamodb", 503, "error")
