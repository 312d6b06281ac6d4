"""On the local stack running the repository's template: the gateway's own answers are the
template's problem documents, a request it cannot frame is a 400 problem, and a queued signup
the worker can never apply lands in the signup DLQ on its first receive, with the reason."""

from __future__ import annotations

import json
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from sandbox.stack.pytest_plugin import RunningStack
from tests.support.gateway_responses import render

pytestmark = pytest.mark.xdist_group("local-stack")


def test_an_unknown_route_is_the_templates_problem_document(local_stack: RunningStack) -> None:
    answer = requests.get(f"{local_stack.api_url}/no-such-route", timeout=30)

    status, headers, body = render(
        "MISSING_AUTHENTICATION_TOKEN", message="", request_id=answer.headers["x-amzn-RequestId"]
    )
    assert (answer.status_code, answer.json()) == (status, body)
    assert answer.headers["Content-Type"] == headers["Content-Type"] == "application/problem+json"


def test_a_content_length_that_is_not_a_number_is_a_400_problem(local_stack: RunningStack) -> None:
    address = urlsplit(local_stack.api_url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(b"POST /subscribe HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n")
        received = b""
        while chunk := connection.recv(65536):
            received += chunk

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body)["status"] == 400


def _dead_letters(stack: RunningStack, body: str) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    queue = stack.resource("SignupDeadLetterQueue").url
    messages = sqs.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    ).get("Messages", [])
    for message in messages:  # others' dead letters become visible again at once
        if message["Body"] != body:
            sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return [message for message in messages if message["Body"] == body]


def test_a_queued_signup_that_can_never_apply_is_in_the_dlq_after_one_receive(local_stack: RunningStack) -> None:
    # Given a message on the signup queue that is no queued signup
    body = json.dumps({"signup": f"not a signup {uuid.uuid4()}"})
    local_stack.client("sqs").send_message(QueueUrl=local_stack.resource("SignupQueue").url, MessageBody=body)

    # When the stack's event source hands it to the signup worker
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while not found and time.monotonic() < deadline:
        found = _dead_letters(local_stack, body)
        time.sleep(0.2)

    # Then it is in the DLQ with why, received once (not maxReceiveCount times)
    (parked,) = found
    assert parked["MessageAttributes"]["refusal_reason"]["StringValue"] == "unreadable ValueError"
    assert parked["MessageAttributes"]["receive_count"]["StringValue"] == "1"
