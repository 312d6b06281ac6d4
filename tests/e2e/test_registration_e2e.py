"""Ory Kratos -> POST /hooks/registration -> email queue -> email sender -> Mandrill, on the
local stack (the repository's template.yaml: API, moto, the Mailchimp sandbox, SQS pollers)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from mailchimp_marketing.api_client import ApiClientError

from sandbox.mailchimp.client import SandboxClient
from sandbox.stack.local_config import SECRET_SEEDS
from sandbox.stack.pytest_plugin import RunningStack
from tests.support.registration import hook_body, kratos_ctx, new_id, render_hook_body

pytestmark = pytest.mark.xdist_group("local-stack")

LOCAL_HOOK_KEY = SECRET_SEEDS["HookKeysSecret"]()["registration_hook_keys"][0]
WAIT_SECONDS = 90


@pytest.fixture(scope="module")
def stack(local_stack: RunningStack) -> RunningStack:
    return local_stack


@pytest.fixture(scope="module")
def mandrill(stack: RunningStack) -> SandboxClient:
    """The stack's own sandbox (shared: tests use unique addresses and never reset it)."""
    return SandboxClient(str(stack.sandbox_url))


@pytest.fixture
def faults(mandrill: SandboxClient):
    yield mandrill.faults
    mandrill.faults()


def post_hook(stack: RunningStack, body: dict[str, Any], *, key: str = LOCAL_HOOK_KEY, trigger_id: str | None = None):
    headers = {"Authorization": key, "Ory-Webhook-Trigger-ID": trigger_id or new_id()}
    return requests.post(f"{stack.api_url}/hooks/registration", json=body, headers=headers, timeout=30)


def wait_until(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def queue_is_empty(stack: RunningStack, logical_id: str) -> bool:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.resource(logical_id).url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 0
    )


def test_the_shipped_jsonnet_gives_one_email_with_the_name_rendered(stack, mandrill):
    # Given the ctx Kratos renders a registration hook with (cookies and all)
    email = f"ada-{uuid.uuid4().hex[:10]}@example.com"
    ctx = kratos_ctx(email=email, traits={"name": {"first": "Ada", "last": "Lovelace"}})

    # When the shipped Jsonnet is evaluated and its output posted with the hook key
    body = render_hook_body(ctx)
    response = post_hook(stack, body)

    # Then the hook answers 202, and one email for Ada appears, her name rendered
    assert response.status_code == 202, response.text
    (sent,) = wait_until(lambda: mandrill.outbox(to=email), "the welcome email")
    assert "Hi Ada," in sent["html"] and "Hi Ada," in sent["text"]
    assert sent["to"] == [{"email": email, "name": "Ada Lovelace", "type": "to"}]
    assert sent["tags"] == ["registration"]
    assert sent["metadata"]["identity_id"] == ctx["identity"]["id"]
    # and what was sent to us held no cookie
    for cookie in ctx["request_cookies"].values():
        assert cookie not in response.request.body.decode()
    assert "cookie" not in response.request.body.decode().lower()


def test_the_same_hook_delivered_five_times_gives_one_email(stack, mandrill):
    # Given one registration that Kratos delivers five times with the same trigger id
    body, trigger_id = hook_body(), new_id()

    statuses = [post_hook(stack, body, trigger_id=trigger_id).status_code for _ in range(5)]

    # Then every delivery is accepted, and once the queue is drained there is one email
    assert statuses == [202] * 5
    wait_until(lambda: mandrill.outbox(to=body["email"]), "the email")
    wait_until(lambda: queue_is_empty(stack, "EmailQueue"), "the email queue to drain")
    assert len(mandrill.outbox(to=body["email"])) == 1


def test_a_wrong_key_is_401_and_queues_nothing(stack):
    body = hook_body()

    response = post_hook(stack, body, key="not-the-local-hook-key")

    assert response.status_code == 401
    assert response.json()["type"] == "urn:chimpbridge:problem:unauthorized"
    assert not [line for line in stack.logs("RegistrationHookFunction") if body["identity_id"] in line]


def test_a_rejected_recipient_is_recorded_as_rejected_and_not_retried(stack, mandrill):
    # Given a recipient on Mandrill's reject list
    body = hook_body()
    mandrill.transactional_sdk().rejects.add({"email": body["email"], "comment": "hard bounce"})

    # When the person registers
    assert post_hook(stack, body).status_code == 202

    # Then Mandrill answered "rejected" once; the sender logged the reason and did not retry
    (attempt,) = wait_until(lambda: mandrill.outbox(to=body["email"]), "the send attempt")
    assert attempt["status"] == "rejected"
    logged = wait_until(
        lambda: [line for line in stack.logs("EmailSenderFunction") if body["identity_id"] in line],
        "the sender's log line",
    )
    assert any("email rejected by Mandrill" in line and '"reasons":["custom"]' in line for line in logged)
    wait_until(lambda: queue_is_empty(stack, "EmailQueue"), "the email queue to drain")
    assert queue_is_empty(stack, "EmailDeadLetterQueue")
    assert len(mandrill.outbox(to=body["email"])) == 1


def test_a_newsletter_opt_in_subscribes_the_person_pending(stack, mandrill):
    # Given a registration form whose newsletter checkbox (the trait) is ticked
    email = f"optin-{uuid.uuid4().hex[:10]}@example.net"  # Mailchimp refuses example.com as fake
    ctx = kratos_ctx(email=email, traits={"name": {"first": "Mary", "last": "Jackson"}, "newsletter": True})

    # When Kratos calls the hook
    response = post_hook(stack, render_hook_body(ctx))

    # Then the person gets the welcome email and is in the audience, waiting to confirm
    assert response.status_code == 202 and response.json()["newsletter"] == "queued"
    wait_until(lambda: mandrill.outbox(to=email), "the welcome email")
    marketing = mandrill.marketing_sdk()
    subscriber_hash = hashlib.md5(email.lower().encode()).hexdigest()

    def member() -> dict[str, Any] | None:
        try:
            return dict(marketing.lists.get_list_member(mandrill.default_list_id, subscriber_hash))
        except ApiClientError:
            return None

    found = wait_until(member, "the audience member")
    assert found["status"] == "pending"
    assert found["merge_fields"]["FNAME"] == "Mary"


@pytest.mark.slow
def test_200_registrations_with_30_percent_mandrill_failures_give_exactly_200_emails(stack, mandrill, faults):
    # Given Mandrill failing 30% of calls with 500 or 429 (before sending anything)
    faults(error_rate=0.3, statuses=[500, 429], apis=["transactional"])
    run = uuid.uuid4().hex[:8]
    bodies = [hook_body(email=f"burst-{run}-{index}@example.com") for index in range(200)]

    # When 200 people register at once
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda body: post_hook(stack, body).status_code, bodies))
    assert statuses == [202] * 200

    # Then, once every retry has run, each of them got exactly one email
    def delivered() -> Counter[str]:
        return Counter(
            recipient["email"]
            for message in mandrill.outbox()
            for recipient in message["to"]
            if recipient["email"].startswith(f"burst-{run}-")
        )

    wait_until(lambda: len(delivered()) == 200, "200 emails")
    wait_until(lambda: queue_is_empty(stack, "EmailQueue"), "the email queue to drain")
    counts = delivered()
    assert len(counts) == 200
    assert set(counts.values()) == {1}
    assert mandrill.stats()["faults_injected"] > 0


def test_cookies_in_the_transient_payload_never_reach_mandrill(stack, mandrill):
    # Given a body (sent by a script, or by a Jsonnet that put ctx there) whose transient_payload
    # carries the person's Kratos session cookie
    session = f"MTcwMDAwMDAwMHxzZWNyZXQ-{uuid.uuid4().hex}"
    body = hook_body(transient_payload={"request_cookies": {"ory_kratos_session": session}})

    # When it is posted to the running stack
    response = post_hook(stack, body)

    # Then the email goes out without the cookie, and no log line holds it
    assert response.status_code == 202, response.text
    (sent,) = wait_until(lambda: mandrill.outbox(to=body["email"]), "the welcome email")
    assert session not in json.dumps(sent)
    assert not [line for line in stack.logs("RegistrationHookFunction") if session in line]


def test_a_flow_id_with_a_trailing_space_is_the_same_registration(stack, mandrill):
    # Given one registration delivered twice, its flow id once as "f1" and once as "f1 "
    body = hook_body(flow={"id": f"f1-{uuid.uuid4().hex[:8]}", "type": "browser"})
    again = {**body, "flow": {"id": body["flow"]["id"] + " ", "type": "browser"}}

    # When both are posted
    assert post_hook(stack, body).status_code == 202
    assert post_hook(stack, again).status_code == 202

    # Then, once the queue is drained, one email was sent
    wait_until(lambda: mandrill.outbox(to=body["email"]), "the email")
    wait_until(lambda: queue_is_empty(stack, "EmailQueue"), "the email queue to drain")
    assert len(mandrill.outbox(to=body["email"])) == 1
