"""Mailchimp's audience webhook over real HTTP on the local stack (the repository's template.yaml):
the API answers validation and deliveries, the bus is emulated on moto, and the example rule
(on locally) copies unsubscribes to its queue."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import requests

from sandbox.stack.cli_output import banner
from sandbox.stack.env_file import REPO_ROOT
from sandbox.stack.local_config import SECRET_SEEDS
from sandbox.stack.pytest_plugin import RunningStack
from tests.support.mailchimp_webhook import delivery_body

pytestmark = pytest.mark.xdist_group("local-stack")

LOCAL_TOKEN = SECRET_SEEDS["MailchimpWebhookSecret"]()["webhook_tokens"][0]
FORM = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "MailChimp"}


def url(stack: RunningStack, token: str = LOCAL_TOKEN) -> str:
    return f"{stack.api_url}/webhooks/mailchimp/{token}"


def unsubscribes_about(stack: RunningStack, email: str, *, wait_seconds: float = 5) -> list[dict[str, Any]]:
    """Member Unsubscribed events about ``email`` on the example rule's queue (others are left there)."""
    sqs = stack.client("sqs")
    queue = stack.resource("UnsubscribeQueue").url
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline and not found:
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            body = json.loads(message["Body"])
            if body["detail"].get("email") == email:
                found.append(body)
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            else:
                sqs.change_message_visibility(
                    QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        time.sleep(0.1)
    return found


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_mailchimps_url_validation_is_200(local_stack: RunningStack, method: str) -> None:
    response = requests.request(method, url(local_stack), headers={"User-Agent": "MailChimp.com WebHook Validator"})

    assert response.status_code == 200


def test_an_unsubscribe_delivered_over_http_reaches_the_applications_queue(local_stack: RunningStack) -> None:
    # Given Mailchimp's unsubscribe delivery about a person of this test's own
    email = f"leaver-{uuid.uuid4().hex[:10]}@example.com"
    body = delivery_body("unsubscribe", **{"data[email]": email, "data[reason]": "manual"})

    # When Mailchimp posts it to the webhook URL, twice (at least once)
    answers = [requests.post(url(local_stack), data=body, headers=FORM, timeout=30) for _ in range(2)]

    # Then both are 200, and one Member Unsubscribed event with the reason is on the example rule's queue
    assert [answer.status_code for answer in answers] == [200, 200]
    (event,) = unsubscribes_about(local_stack, email)
    assert event["source"] == "chimpbridge.mailchimp"
    assert event["detail-type"] == "Member Unsubscribed"
    assert event["detail"]["reason"] == "manual"
    assert unsubscribes_about(local_stack, email, wait_seconds=0.5) == []


def test_a_subscribe_is_answered_and_not_routed_to_the_unsubscribe_queue(local_stack: RunningStack) -> None:
    email = f"joiner-{uuid.uuid4().hex[:10]}@example.com"
    body = delivery_body("subscribe", **{"data[email]": email})

    response = requests.post(url(local_stack), data=body, headers=FORM, timeout=30)

    assert response.status_code == 200 and response.json()["detail_type"] == "Member Subscribed"
    assert unsubscribes_about(local_stack, email, wait_seconds=0.5) == []


def test_a_wrong_token_is_404(local_stack: RunningStack) -> None:
    response = requests.post(url(local_stack, "not-the-token"), data=delivery_body("subscribe"), headers=FORM)

    assert response.status_code == 404


def test_make_dev_shows_where_published_events_are(local_stack: RunningStack) -> None:
    # Given what `make dev` prints
    text = banner(local_stack.stack, REPO_ROOT / "events", startup_seconds=1.0)
    tap = local_stack.resource("EventBus").attributes["TapQueueUrl"]

    # When a subscribe is delivered over HTTP
    email = f"watched-{uuid.uuid4().hex[:10]}@example.com"
    body = delivery_body("subscribe", **{"data[email]": email})
    assert requests.post(url(local_stack), data=body, headers=FORM, timeout=30).status_code == 200

    # Then the banner names the queue every published event is copied to, and the event is there
    assert tap in text and "rule MemberUnsubscribedRule (ENABLED) -> UnsubscribeQueue" in text
    sqs = local_stack.client("sqs")
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(event["detail"].get("email") == email for event in seen):
        messages = sqs.receive_message(QueueUrl=tap, MaxNumberOfMessages=10).get("Messages", [])
        seen += [json.loads(message["Body"]) for message in messages]
    assert any(event["detail-type"] == "Member Subscribed" and event["detail"]["email"] == email for event in seen)
