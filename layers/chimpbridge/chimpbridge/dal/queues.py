"""Putting work on SQS queues: one message per model, JSON encoded."""

from __future__ import annotations

from pydantic import BaseModel

from chimpbridge.dal import aws


def send(queue_url: str, message: BaseModel, *, delay_seconds: int = 0) -> str:
    """Queue ``message``; returns the SQS message id. Raises if SQS refuses it."""
    response = aws.sqs().send_message(
        QueueUrl=queue_url, MessageBody=message.model_dump_json(exclude_none=True), DelaySeconds=delay_seconds
    )
    return response["MessageId"]
