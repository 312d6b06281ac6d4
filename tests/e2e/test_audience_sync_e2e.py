"""Two-way sync end to end, on the local stack: a signup through POST /subscribe, then what the
person does in Mailchimp (the sandbox acts as them), comes back through the audience webhook
(the sandbox delivers the real form payload over HTTP) as events on the bus. With EventBridge
failing, the sandbox's retries publish every change exactly once after recovery.

The webhook is registered in the sandbox the way the stack registers it (every event, sources
user and admin), at the local URL with the local token."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from sandbox.mailchimp.client import SandboxClient
from sandbox.mailchimp.constants import DEFAULT_LIST_ID
from sandbox.stack.env_file import REPO_ROOT
from sandbox.stack.pytest_plugin import RunningStack
from sandbox.stack.stack import LocalStack
from tests.support.audience_sync import WAIT_SECONDS, new_email, published_about, register_webhook, subscribe
from tests.support.aws_faults import AwsError, AwsFaults

pytestmark = pytest.mark.xdist_group("local-stack")


# ---------------------------------------------------------------- the round trip
@pytest.fixture(scope="module")
def synced(local_stack: RunningStack) -> Iterator[tuple[LocalStack, SandboxClient]]:
    sandbox = SandboxClient(str(local_stack.sandbox_url))
    webhook_id = register_webhook(local_stack.stack, sandbox)
    yield local_stack.stack, sandbox
    sandbox.marketing_sdk().lists.delete_list_webhook(DEFAULT_LIST_ID, webhook_id)
    sandbox.close()


def test_a_confirmed_signup_is_a_member_subscribed_event_with_the_merge_fields(synced):
    stack, sandbox = synced
    # Given a signup through POST /subscribe (pending: our own API write, which does not echo)
    email = new_email("confirm")
    subscribe(stack, email, "Ada")
    assert published_about(stack, email, "Member Subscribed", wait=2) == []

    # When the person confirms it in Mailchimp
    sandbox.act_on_member(email, "confirm")

    # Then one Member Subscribed event with their merge fields is on the bus
    (event,) = published_about(stack, email, "Member Subscribed")
    assert event["source"] == "chimpbridge.mailchimp"
    assert event["detail"]["merge_fields"]["FNAME"] == "Ada"
    assert event["detail"]["list_id"] == DEFAULT_LIST_ID


def test_an_unsubscribe_is_a_member_unsubscribed_event_with_the_reason(synced):
    stack, sandbox = synced
    email = new_email("leave")
    subscribe(stack, email, "Grace")
    sandbox.act_on_member(email, "confirm")
    published_about(stack, email, "Member Subscribed")

    sandbox.act_on_member(email, "unsubscribe", reason="manual")

    (event,) = published_about(stack, email, "Member Unsubscribed")
    assert event["detail"]["reason"] == "manual"


def test_an_address_change_is_a_member_email_changed_event_with_both_addresses(synced):
    stack, sandbox = synced
    email, changed = new_email("old"), new_email("new")
    subscribe(stack, email, "Alan")
    sandbox.act_on_member(email, "confirm")
    published_about(stack, email, "Member Subscribed")

    sandbox.act_on_member(email, "change_email", new_email=changed)

    (event,) = published_about(stack, email, "Member Email Changed")
    assert (event["detail"]["old_email"], event["detail"]["new_email"]) == (email, changed)


# ---------------------------------------------------------------- EventBridge failing
@pytest.fixture(scope="module")
def faulty(moto_server: str) -> Iterator[tuple[LocalStack, SandboxClient, AwsFaults]]:
    """A stack of its own whose AWS is reached through a proxy that can fail chosen calls."""
    with AwsFaults(moto_server) as faults:
        stack = LocalStack(
            REPO_ROOT / "template.yaml",
            api_port=0,
            sandbox_port=0,
            attach_moto_url=faults.url,
            stack_name=f"faulty{uuid.uuid4().hex[:6]}",
            poll_queues=False,
            log_sink=lambda source, line: None,
        )
        with stack:
            sandbox = SandboxClient(str(stack.sandbox_url))
            sandbox.webhook_settings(retry_delays=[0.5, 1.0, 2.0])
            register_webhook(stack, sandbox)
            yield stack, sandbox, faults
            sandbox.close()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_with_eventbridge_failing_deliveries_are_retried_and_every_change_arrives_once(faulty):
    stack, sandbox, faults = faulty
    # Given two confirmed members, and then EventBridge refusing every PutEvents
    emails = [new_email("outage"), new_email("outage")]
    for email in emails:
        subscribe(stack, email, "Rosalind")
        sandbox.act_on_member(email, "confirm")
        published_about(stack, email, "Member Subscribed")
    refusal = AwsError(
        500, json.dumps({"__type": "InternalException", "message": "x"}).encode(), "application/x-amz-json-1.1"
    )
    faults.fail("PutEvents", refusal, times=10_000)

    # When both unsubscribe while it fails, and the sandbox has tried each delivery twice
    for email in emails:
        sandbox.act_on_member(email, "unsubscribe", reason="manual")

    def tried_twice() -> bool:
        deliveries = sandbox.webhook_deliveries(type="unsubscribe")
        ours = [
            delivery
            for delivery in deliveries
            if any(email.replace("@", "%40") in delivery["body"] for email in emails)
        ]
        return len(ours) == 2 and all(delivery["attempts"] >= 2 for delivery in ours)

    wait_until(tried_twice, "two failed attempts of each delivery")

    # Then they were answered 5xx (retried), never 410 (the webhook stays enabled), nothing published
    answers = {
        delivery["answered"]
        for delivery in sandbox.webhook_deliveries(type="unsubscribe")
        if any(email.replace("@", "%40") in delivery["body"] for email in emails)
    }
    assert answers and all(500 <= status < 600 for status in answers)
    assert all(webhook["enabled"] for webhook in sandbox.webhooks())
    assert all(published_about(stack, email, "Member Unsubscribed", wait=0.5) == [] for email in emails)

    # When EventBridge recovers, then the sandbox's retries publish each change exactly once
    faults.clear()
    for email in emails:
        (event,) = published_about(stack, email, "Member Unsubscribed")
        assert event["detail"]["reason"] == "manual"
