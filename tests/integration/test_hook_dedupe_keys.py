"""One registration, one email, however its ids are spelled: the hook's and the sender's
dedupe keys read every part as its sender meant it (no surrounding whitespace, Unicode NFC, no
case where the value has none). Two deliveries through the real hook and sender functions,
AWS on moto, counted in the sandbox's outbox."""

import unicodedata

import pytest

from tests.support.functions import LambdaContext, load_function
from tests.support.registration import hook_body, hook_event, new_id, queued_email


@pytest.fixture
def functions(email_env):
    return load_function("registration_hook"), load_function("email_sender")


def deliver(functions, email_env, body):
    """POST the hook (a new trigger id, as a second Kratos delivery has), then let the sender
    send whatever is on the email queue."""
    hook, sender = functions
    response = hook.lambda_handler(hook_event(body, trigger_id=new_id()), LambdaContext())
    assert response["statusCode"] == 202
    queued = email_env.receive()
    if queued:
        result = sender.lambda_handler(email_env.sqs_event(queued), LambdaContext(timeout_seconds=30))
        assert result == {"batchItemFailures": []}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("f1", "f1 "),
        ("f1", "  f1  "),
        (unicodedata.normalize("NFC", "café-flow"), unicodedata.normalize("NFD", "café-flow")),
        ("9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f", "9F1C2D3E-4B5A-4C6D-8E7F-0A1B2C3D4E5F"),
    ],
    ids=["trailing-space", "surrounding-whitespace", "nfc-nfd", "uuid-case"],
)
def test_two_spellings_of_one_flow_send_one_email(functions, email_env, first, second):
    # Given one registration delivered twice, its flow id spelled two ways
    body = hook_body(flow={"id": first, "type": "browser"})
    again = {**body, "flow": {"id": second, "type": "browser"}}

    # When both deliveries go through the hook and the sender
    deliver(functions, email_env, body)
    deliver(functions, email_env, again)

    # Then one email was sent
    assert len(email_env.sandbox.outbox(to=body["email"])) == 1


def test_distinct_flows_still_send_one_email_each(functions, email_env):
    body = hook_body(flow={"id": "f1", "type": "browser"})

    deliver(functions, email_env, body)
    deliver(functions, email_env, {**body, "flow": {"id": "f2", "type": "browser"}})

    assert len(email_env.sandbox.outbox(to=body["email"])) == 2


def test_the_sender_reads_one_spelling_of_a_queued_key(functions, email_env):
    # Given two queued messages whose idempotency keys differ only by whitespace and Unicode form
    # (put on the queue by another producer, or by hand for a re-drive)
    _, sender = functions
    message = queued_email({"first": "Ada"}, prefix="dedupe")
    key = unicodedata.normalize("NFC", f"registration:café-{message['identity_id']}")
    message["idempotency_key"] = key
    variant = {**message, "idempotency_key": " " + unicodedata.normalize("NFD", key) + " "}

    # When the sender gets them one after the other
    for queued in (message, variant):
        sender.lambda_handler(email_env.sqs_event([email_env.queue(queued)]), LambdaContext(timeout_seconds=30))

    # Then one email was sent
    assert len(email_env.sandbox.outbox(to=message["recipient"]["email"])) == 1
