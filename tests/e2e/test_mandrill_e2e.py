"""Email tracking end to end on the local stack: Ory Kratos' hook -> the email sender -> the
sandbox's Mandrill, whose webhook posts signed batches to /webhooks/mandrill -> the events queue
-> the worker -> the bus, the email record and the suppression; then the sender skips the address.

A stack of its own (started fresh): the receiver must read the webhook's key, which the sandbox
generates when the webhook is added, before its first delivery."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from sandbox.mailchimp.client import SandboxClient
from sandbox.stack.local_config import SECRET_SEEDS
from sandbox.stack.pytest_plugin import RunningStack
from tests.support.registration import hook_body

pytestmark = pytest.mark.xdist_group("local-stack-mandrill")

LOCAL_HOOK_KEY = SECRET_SEEDS["HookKeysSecret"]()["registration_hook_keys"][0]
HARD_BOUNCE = "hard_bounce@test.mandrillapp.com"
WAIT_SECONDS = 60
EVENTS = ["send", "deferral", "hard_bounce", "soft_bounce", "delivered", "open", "click", "spam", "unsub", "reject"]


@pytest.fixture(scope="module")
def tracked(local_stack_factory) -> Iterator[tuple[RunningStack, SandboxClient]]:
    stack = local_stack_factory(parameters={"MandrillWebhookRegistrationRevision": "e2e-email-tracking"})
    sandbox = SandboxClient(str(stack.sandbox_url))
    # Given the Mandrill webhook at the stack's receiver (as the stack registers it), its key stored
    webhook = sandbox.add_mandrill_webhook(f"{stack.api_url}/webhooks/mandrill", EVENTS)
    secret = stack.resource("MandrillWebhookSecret")
    stack.client("secretsmanager").put_secret_value(
        SecretId=secret.arn, SecretString=json.dumps({"webhook_keys": [webhook["auth_key"]]})
    )
    yield stack, sandbox
    sandbox.transactional_sdk().webhooks.delete({"id": webhook["id"]})
    sandbox.close()


def register(stack: RunningStack, email: str) -> str:
    body = hook_body(email=email)
    headers = {"Authorization": LOCAL_HOOK_KEY, "Ory-Webhook-Trigger-ID": body["identity_id"]}
    answer = requests.post(f"{stack.api_url}/hooks/registration", json=body, headers=headers, timeout=30)
    assert answer.status_code == 202, answer.text
    return str(body["identity_id"])


def wait_until(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def published(stack: RunningStack, detail_type: str, identity_id: str) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    tap = stack.resource("EventBus").attributes["TapQueueUrl"]
    found = []
    for message in sqs.receive_message(QueueUrl=tap, MaxNumberOfMessages=10).get("Messages", []):
        event = json.loads(message["Body"])
        if event["detail-type"] == detail_type and event["detail"].get("identity_id") == identity_id:
            found.append(event)
            sqs.delete_message(QueueUrl=tap, ReceiptHandle=message["ReceiptHandle"])
        else:
            sqs.change_message_visibility(QueueUrl=tap, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return found


def outbox_for(sandbox: SandboxClient, identity_id: str) -> list[dict[str, Any]]:
    return [m for m in sandbox.outbox(to=HARD_BOUNCE) if (m.get("metadata") or {}).get("identity_id") == identity_id]


def email_state(stack: RunningStack, identity_id: str) -> str | None:
    table = stack.resource("StateTable").name
    items = stack.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"email#{identity_id}"}},
    )["Items"]
    states = [item["state"]["S"] for item in items if "#event#" not in item["sk"]["S"]]
    return states[0] if states else None


def test_a_hard_bounce_is_published_recorded_and_the_next_email_to_the_address_is_not_sent(tracked):
    stack, sandbox = tracked

    # When a person registers with Mandrill's hard-bouncing test address
    first = register(stack, HARD_BOUNCE)

    # Then the welcome email went to Mandrill, and its hard bounce came back as an event on the bus
    wait_until(lambda: outbox_for(sandbox, first), "the first welcome email in the outbox")
    (bounce,) = wait_until(lambda: published(stack, "Email Bounced", first), "Email Bounced on the bus")
    assert bounce["source"] == "chimpbridge.mandrill"
    assert bounce["detail"]["email"] == HARD_BOUNCE and bounce["detail"]["hook"] == "registration"
    # And the email record shows bounced
    assert wait_until(lambda: email_state(stack, first) == "bounced", "the record to say bounced")

    # When a second person registers with the same address
    second = register(stack, HARD_BOUNCE)

    # Then the sender skipped it: nothing in the outbox for them, the skip is in the sender's logs
    wait_until(
        lambda: any("the address is suppressed" in line for line in stack.logs("EmailSenderFunction")),
        "the sender to skip the suppressed address",
    )
    assert outbox_for(sandbox, second) == []
