"""Putting work on SQS queues: one message per model, JSON encoded."""

from __future__ import annotations

from chimpbridge.dal import aws


def send(queue_url: str, body: str, *, delay_seconds: int = 0) -> str:
    """Queue ``body`` (a model's JSON); returns the SQS message id. Raises if SQS refuses it."""
    response = aws.sqs().send_message(QueueUrl=queue_url, MessageBody=body, DelaySeconds=delay_seconds)
    return response["MessageId"]


def dead_letter(queue_url: str, body: str, *, reason: str, receive_count: int) -> str:
    """Put a message its consumer gave up on onto the dead-letter queue, as it was, with why:
    message attributes ``refusal_reason`` (service, status, error name) and ``receive_count``.
    A re-drive moves it back unchanged; the attributes are for the person reading the DLQ."""
    response = aws.sqs().send_message(
        QueueUrl=queue_url,
        MessageBody=body,
        MessageAttributes={
            "refusal_reason": {"DataType": "String", "StringValue": reason[:256]},
            "receive_count": {"DataType": "Number", "StringValue": str(receive_count)},
        },
    )
    return response["MessageId"]


def send_all(queue_url: str, bodies: list[str], *, concurrency: int = 8) -> list[str]:
    """Queue every body, ``concurrency`` at a time; returns the message ids in order. Raises if
    SQS refuses one (those before it stay queued)."""
    if len(bodies) <= 1:
        return [send(queue_url, body) for body in bodies]
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - only for several messages

    with ThreadPoolExecutor(max_workers=min(concurrency, len(bodies))) as pool:
        return list(pool.map(lambda body: send(queue_url, body), bodies))


def change_visibility(queue_url: str, delays: dict[str, int]) -> int:
    """Hide received messages (receipt handle -> seconds) for a while; returns how many the
    queue refused (the message was already deleted, or the handle expired)."""
    handles = list(delays.items())
    refused = 0
    for start in range(0, len(handles), 10):  # SQS batches hold at most 10 entries
        chunk = handles[start : start + 10]
        response = aws.sqs().change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                for index, (handle, seconds) in enumerate(chunk)
            ],
        )
        refused += len(response.get("Failed", []))
    return refused
