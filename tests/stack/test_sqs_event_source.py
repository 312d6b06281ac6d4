"""SQS event sources: the template's queues are polled and the consumer gets Lambda SQS events."""

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.stack.pytest_plugin import RunningStack
from sandbox.stack.sqs_source import failed_message_ids
from sandbox.stack.workers import InvocationResult

pytestmark = pytest.mark.xdist_group("local-stack-fixture")


@pytest.fixture(scope="module", autouse=True)
def warm_consumer(fixture_stack: RunningStack) -> None:
    """A cold start on a busy machine can outlast the 3 s visibility timeout, and SQS rightly
    redelivers then; the tests below are about the event source, not about cold starts."""
    fixture_stack.invoke("ConsumerFunction", {"Records": []})


def _wait_for(condition: Callable[[], Any], seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {seconds} s")


def _deliveries(stack: RunningStack, message_id: str) -> list[dict[str, Any]]:
    """What the fixture consumer wrote to the state table for each delivery of one message."""
    dynamodb = stack.client("dynamodb")
    items = dynamodb.query(
        TableName=stack.resource("StateTable").name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": message_id}},
    )["Items"]
    return sorted(items, key=lambda item: item["sk"]["S"])


def _dead_letters(stack: RunningStack, body: str) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=stack.resource("WorkDlq").url,
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        WaitTimeSeconds=0,
    ).get("Messages", [])
    found = [message for message in messages if message["Body"] == body]
    for message in messages:  # leave other tests' dead letters where they were
        if message not in found:
            sqs.change_message_visibility(
                QueueUrl=stack.resource("WorkDlq").url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
    return found


def _queue_is_empty(stack: RunningStack) -> bool:
    """No message on the work queue, visible or in flight (the tests here run one at a time)."""
    counts = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.resource("WorkQueue").url, AttributeNames=counts
    )
    return all(attributes["Attributes"][name] == "0" for name in counts)


def _send(stack: RunningStack, body: str) -> str:
    return stack.client("sqs").send_message(QueueUrl=stack.resource("WorkQueue").url, MessageBody=body)["MessageId"]


def test_a_successful_record_is_delivered_once_and_deleted(fixture_stack: RunningStack) -> None:
    # Given a record the consumer accepts
    body = f"ok-{uuid.uuid4()}"

    # When it is sent to the queue the template binds to ConsumerFunction
    message_id = _send(fixture_stack, body)

    # Then the consumer got it once, as a Lambda SQS record, and it left the queue: deleted, it
    # can never come back (a kept record would stay in flight, then visible, and never leave)
    (delivery,) = _wait_for(lambda: _deliveries(fixture_stack, message_id))
    assert delivery["sk"]["S"] == "delivery#1"
    assert delivery["event_source_arn"]["S"] == fixture_stack.resource("WorkQueue").arn
    _wait_for(lambda: _queue_is_empty(fixture_stack))
    assert len(_deliveries(fixture_stack, message_id)) == 1


def test_a_reported_batch_item_failure_is_redelivered_then_dead_lettered(fixture_stack: RunningStack) -> None:
    # Given a record the consumer reports in batchItemFailures (maxReceiveCount is 2)
    body = f"fail-{uuid.uuid4()}"

    # When it is sent
    message_id = _send(fixture_stack, body)

    # Then it comes back after the visibility timeout, and after the second failure lands in the DLQ
    (dead_letter,) = _wait_for(lambda: _dead_letters(fixture_stack, body))
    assert dead_letter["MessageId"] == message_id
    deliveries = [item["sk"]["S"] for item in _deliveries(fixture_stack, message_id)]
    assert deliveries == ["delivery#1", "delivery#2"]


def test_a_record_the_consumer_dead_letters_itself_lands_there_once_with_its_reason(
    fixture_stack: RunningStack,
) -> None:
    # Given a record the consumer sends to the DLQ itself, then reports done (what the layer's
    # batch consumer does with a refusal no retry can change)
    body = f"refused-{uuid.uuid4()}"

    # When it is sent
    message_id = _send(fixture_stack, body)

    # Then it is in the DLQ after one delivery, with the reason, and gone from the work queue
    (dead_letter,) = _wait_for(lambda: _dead_letters(fixture_stack, body))
    assert dead_letter["MessageAttributes"]["refusal_reason"]["StringValue"] == "upstream 400"
    assert [item["sk"]["S"] for item in _deliveries(fixture_stack, message_id)] == ["delivery#1"]
    _wait_for(lambda: _queue_is_empty(fixture_stack))


def test_an_unhandled_error_keeps_the_whole_batch(fixture_stack: RunningStack) -> None:
    # Given a record on which the consumer raises
    body = f"raise-{uuid.uuid4()}"

    # When it is sent
    message_id = _send(fixture_stack, body)

    # Then it is retried like a reported failure and ends in the DLQ
    _wait_for(lambda: _dead_letters(fixture_stack, body))
    assert [item["sk"]["S"] for item in _deliveries(fixture_stack, message_id)] == ["delivery#1", "delivery#2"]


def test_moto_itself_moves_a_message_to_the_dlq_after_max_receive_count(fixture_stack: RunningStack) -> None:
    """Why sqs_source.py does not reimplement redrive: moto's ReceiveMessage applies RedrivePolicy."""
    # Given a queue with maxReceiveCount 1, outside any event source
    sqs = fixture_stack.client("sqs")
    suffix = uuid.uuid4().hex[:8]
    dlq_url = sqs.create_queue(QueueName=f"redrive-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    queue_url = sqs.create_queue(
        QueueName=f"redrive-{suffix}", Attributes={"RedrivePolicy": policy, "VisibilityTimeout": "1"}
    )["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="once")

    # When it is received once, not deleted, and received again after the visibility timeout
    assert len(sqs.receive_message(QueueUrl=queue_url).get("Messages", [])) == 1
    time.sleep(1.2)
    second = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])

    # Then the second receive finds nothing and the message is in the DLQ
    assert second == []
    assert [message["Body"] for message in sqs.receive_message(QueueUrl=dlq_url).get("Messages", [])] == ["once"]


def test_records_come_in_batches_up_to_the_template_batch_size(fixture_stack: RunningStack) -> None:
    # Given seven records sent at once (BatchSize is 5)
    sqs = fixture_stack.client("sqs")
    bodies = [f"ok-batch-{uuid.uuid4()}" for _ in range(7)]
    entries = [{"Id": str(index), "MessageBody": body} for index, body in enumerate(bodies)]
    sent = sqs.send_message_batch(QueueUrl=fixture_stack.resource("WorkQueue").url, Entries=entries)["Successful"]

    # When the pollers hand them to the consumer
    deliveries = [_wait_for(lambda m=entry["MessageId"]: _deliveries(fixture_stack, m))[0] for entry in sent]

    # Then every record was delivered once, in batches of at most five
    assert all(item["sk"]["S"] == "delivery#1" for item in deliveries)
    assert max(int(item["batch_size"]["N"]) for item in deliveries) <= 5


def _result(payload: Any, error: bool = False) -> InvocationResult:
    return InvocationResult(request_id="r", payload=payload, error=error, duration_ms=1.0, cold_start=False)


@pytest.mark.parametrize(
    ("result", "report_failures", "expected"),
    [
        (_result({"batchItemFailures": [{"itemIdentifier": "b"}]}), True, {"b"}),
        (_result({"batchItemFailures": []}), True, set()),
        (_result(None), True, set()),
        (_result({"batchItemFailures": [{"itemIdentifier": "b"}]}), False, set()),
        (_result({"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}), True, {"a", "b"}),
        (_result({"batchItemFailures": [{"itemIdentifier": ""}]}), True, {"a", "b"}),
        (_result({"errorType": "RuntimeError"}, error=True), True, {"a", "b"}),
    ],
    ids=["listed", "empty-list", "no-payload", "not-enabled", "unknown-id", "empty-id", "unhandled-error"],
)
def test_which_records_stay_follows_lambda(result: InvocationResult, report_failures: bool, expected: set[str]) -> None:
    assert failed_message_ids(result, ["a", "b"], report_failures) == expected
