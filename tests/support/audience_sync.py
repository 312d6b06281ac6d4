"""The two-way sync on the local stack, for end-to-end tests: the audience webhook registered in
the sandbox as the stack registers it, signups, and the events the bus published (read back from
its local "-published" queue)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import requests

from sandbox.mailchimp.client import SandboxClient
from sandbox.mailchimp.constants import DEFAULT_LIST_ID
from sandbox.stack.local_config import SECRET_SEEDS
from sandbox.stack.stack import LocalStack

TOKEN = SECRET_SEEDS["MailchimpWebhookSecret"]()["webhook_tokens"][0]
EVERY_EVENT = {name: True for name in ("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign")}
WAIT_SECONDS = 30


def register_webhook(stack: LocalStack, sandbox: SandboxClient) -> str:
    """The audience webhook at the stack's receiver, as the stack registers it; returns its id."""
    created = sandbox.marketing_sdk().lists.create_list_webhook(
        DEFAULT_LIST_ID,
        {
            "url": f"{stack.api_url}/webhooks/mailchimp/{TOKEN}",
            "events": EVERY_EVENT,
            "sources": {"user": True, "admin": True, "api": False},
        },
    )
    return str(created["id"])


def published_about(stack: LocalStack, email: str, detail_type: str, *, wait: float = WAIT_SECONDS) -> list[dict]:
    """Events of ``detail_type`` about ``email`` on the bus (its local "-published" queue), once
    at least one is there; later ones published for the same change would show up too."""
    sqs = stack.client("sqs")
    tap = stack.resource("EventBus").attributes["TapQueueUrl"]
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=tap, MaxNumberOfMessages=10).get("Messages", []):
            event = json.loads(message["Body"])
            detail = event["detail"]
            if event["detail-type"] == detail_type and email in (detail.get("email"), detail.get("old_email")):
                found.append(event)
                sqs.delete_message(QueueUrl=tap, ReceiptHandle=message["ReceiptHandle"])
            else:
                sqs.change_message_visibility(QueueUrl=tap, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        if found:
            time.sleep(1)  # a second publish of the same change would be right behind it
            deadline = min(deadline, time.monotonic())
        time.sleep(0.1)
    return found


def subscribe(stack: LocalStack, email: str, first_name: str) -> None:
    answer = requests.post(f"{stack.api_url}/subscribe", json={"email": email, "first_name": first_name}, timeout=30)
    assert answer.status_code == 200 and answer.json()["status"] == "pending"


def new_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.org"
