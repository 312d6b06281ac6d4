"""Queued signups as the signup worker receives them: sent to the test's moto queue, received
back with their attributes, and wrapped in the SQS event Lambda would pass."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from chimpbridge.models.signup import QueuedSignup, Signup
from sandbox.mailchimp import DEFAULT_LIST_ID


def queued(email: str, **fields: Any) -> QueuedSignup:
    """A signup for ``email`` in the default audience, as the signup path queues it."""
    return QueuedSignup(
        signup=Signup(list_id=DEFAULT_LIST_ID, email=email, **fields),
        queued_at=datetime.now(UTC),
        reason="mailchimp-503",
    )


def queue_signups(signup_api: Any, *bodies: QueuedSignup | str) -> dict[str, Any]:
    """Send ``bodies`` (QueuedSignup or raw text) to the signup queue; the SQS event of their receipt."""
    for body in bodies:
        text = body if isinstance(body, str) else body.to_json()
        signup_api.sqs.send_message(QueueUrl=signup_api.queue_url, MessageBody=text)
    received = signup_api.sqs.receive_message(
        QueueUrl=signup_api.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=60
    )["Messages"]
    assert len(received) == len(bodies)
    return {"Records": [sqs_record(message) for message in received]}


def sqs_record(message: dict[str, Any]) -> dict[str, Any]:
    """The record Lambda hands the worker for a message received from the queue."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message["Attributes"],
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:signups",
        "awsRegion": "us-east-1",
    }


def failed_ids(result: dict[str, Any]) -> list[str]:
    """The message ids a partial batch response hands back to the queue."""
    return [item["itemIdentifier"] for item in result["batchItemFailures"]]
