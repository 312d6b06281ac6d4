"""Signups while the bundle is not connected (token revoked in Mailchimp, or disconnected):
queued, not lost, logged and counted; after a new connect the queue drains. The signup and
worker functions share the Mailchimp secret with the connect function, as in the template."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.mailchimp.client import SandboxClient
from tests.support.connect import ConnectWorld
from tests.support.functions import LambdaContext, load_function
from tests.support.signup import SignupApi
from tests.support.signup_queue import failed_ids, sqs_record


@pytest.fixture
def world(
    sandbox: SandboxClient, aws_env: str, monkeypatch: pytest.MonkeyPatch, signup_api: SignupApi
) -> Iterator[ConnectWorld]:
    connected = ConnectWorld(sandbox, aws_env, monkeypatch)
    signup_api.configure(MAILCHIMP_SECRET_ARN=connected.mailchimp_secret_arn)
    assert connected.connect().result == "connected"
    yield connected


def drain(signup_api: SignupApi) -> dict[str, Any]:
    """One worker invocation over everything on the signup queue, as Lambda would deliver it."""
    received = signup_api.sqs.receive_message(
        QueueUrl=signup_api.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=60
    ).get("Messages", [])
    records = [sqs_record(message) for message in received]
    result: dict[str, Any] = load_function("signup_worker").lambda_handler(
        {"Records": records}, LambdaContext(timeout_seconds=30)
    )
    return {"records": len(records), "failed": failed_ids(result)}


def metrics_named(output: str, name: str) -> float:
    """The sum of metric ``name`` in the EMF lines the functions printed."""
    documents = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    return sum(sum(document.get(name, [])) for document in documents)


def test_a_signup_goes_through_with_the_oauth_token(world: ConnectWorld, signup_api: SignupApi, new_email: Any) -> None:
    # Given
    email = new_email()

    # When
    answer = signup_api.post_json({"email": email})

    # Then
    assert answer.status == 200 and answer.body is not None and answer.body["status"] == "pending"
    assert signup_api.member(email) is not None


def test_after_revocation_a_signup_is_queued_logged_and_counted(
    world: ConnectWorld, signup_api: SignupApi, new_email: Any, logged: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the account owner revoked the app in Mailchimp
    world.sandbox.revoke_oauth(client_id=world.client_id)
    email = new_email()

    # When
    answer = signup_api.post_json({"email": email})

    # Then
    assert answer.status == 202 and answer.body is not None and answer.body["status"] == "queued"
    assert [item["signup"]["email"] for item in signup_api.queued()] == [email]
    assert signup_api.member(email) is None
    assert any(line["message"].startswith("Mailchimp refused the credentials") for line in logged())
    assert metrics_named(capsys.readouterr().out, "MailchimpNotConnected") == 1
    assert world.status().json()["connected"] is False


def test_after_reconnecting_the_queue_drains(world: ConnectWorld, signup_api: SignupApi, new_email: Any) -> None:
    # Given signups queued while the token was revoked
    world.sandbox.revoke_oauth(client_id=world.client_id)
    emails = [new_email(), new_email()]
    for email in emails:
        assert signup_api.post_json({"email": email}).body["status"] == "queued"  # type: ignore[index]

    # When the operator connects again and the worker runs
    assert world.connect().result == "connected"
    drained = drain(signup_api)

    # Then
    assert drained == {"records": 2, "failed": []}
    assert all(signup_api.member(email) is not None for email in emails)
    assert world.status().json()["connected"] is True


def test_while_disconnected_signups_are_queued_and_drain_after_a_new_connect(
    world: ConnectWorld, signup_api: SignupApi, new_email: Any
) -> None:
    # Given (a failed record comes back at once, instead of after the worker's back-off)
    signup_api.configure(SIGNUP_RETRY_BASE_DELAY_SECONDS="0")
    world.disconnect()
    email = new_email()

    # When
    queued = signup_api.post_json({"email": email})
    retried_while_disconnected = drain(signup_api)
    world.connect()
    drained = drain(signup_api)

    # Then
    assert queued.body is not None and queued.body["status"] == "queued"
    assert retried_while_disconnected["failed"] and drained == {"records": 1, "failed": []}
    assert signup_api.member(email) is not None
