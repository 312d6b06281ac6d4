"""SQS event source mappings: long-poll a queue on moto and invoke the function with batches.

Lambda's rules, kept: the template's BatchSize; records deleted only after success; with
``ReportBatchItemFailures`` only the listed records stay (an invalid list fails the whole
batch); an unhandled error or timeout keeps the whole batch. Records that stay become visible
again after the queue's VisibilityTimeout, and moto's SQS itself moves a message to the DLQ
when it would be received more than ``maxReceiveCount`` times (``sqs/models.py``
``receive_message``; tests/stack prove it), so no redrive is reimplemented here.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sandbox.stack.intrinsics import LOCAL_REGION
from sandbox.stack.template import SqsEventSource
from sandbox.stack.workers import InvocationResult, LogSink

MAX_MESSAGES_PER_RECEIVE = 10  # SQS's limit per ReceiveMessage
POLL_WAIT_SECONDS = 1  # short long-polls keep shutdown quick
DEFAULT_LOCAL_CONCURRENCY = 2  # Lambda's minimum MaximumConcurrency; plenty on a laptop
Invoker = Callable[[str, Any], InvocationResult]


def _lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    for name, value in attributes.items():
        binary = value.get("BinaryValue")
        converted[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": base64.b64encode(binary).decode() if binary is not None else None,
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": [base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])],
            "dataType": value["DataType"],
        }
        converted[name] = {key: item for key, item in converted[name].items() if item is not None}
    return converted


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One SQS API message as a record of Lambda's SQS event."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": _lambda_message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": LOCAL_REGION,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(result: InvocationResult, batch_ids: list[str], report_failures: bool) -> set[str]:
    """Which records of a batch stay on the queue after this invocation."""
    if result.error:
        return set(batch_ids)
    if not report_failures or not isinstance(result.payload, dict):
        return set()
    failures = result.payload.get("batchItemFailures")
    if not failures:
        return set()
    identifiers = [item.get("itemIdentifier") if isinstance(item, dict) else None for item in failures]
    if any(not identifier or identifier not in batch_ids for identifier in identifiers):
        return set(batch_ids)  # Lambda treats a malformed failure list as "the whole batch failed"
    return {str(identifier) for identifier in identifiers}


class SqsPoller:
    """One event source mapping: ``MaximumConcurrency`` threads, each polling and invoking."""

    def __init__(
        self,
        source: SqsEventSource,
        queue_url: str,
        queue_arn: str,
        sqs_client_factory: Callable[[], Any],
        invoke: Invoker,
        log_sink: LogSink,
        local_concurrency_cap: int,
    ) -> None:
        self.source = source
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self._client_factory = sqs_client_factory
        self._invoke = invoke
        self._log_sink = log_sink
        self.concurrency = max(1, min(source.maximum_concurrency or DEFAULT_LOCAL_CONCURRENCY, local_concurrency_cap))
        self._stopping = threading.Event()
        # moto's ReceiveMessage is not atomic across threads: two concurrent receives can both
        # take the same visible message. The mapping's threads therefore receive one at a time
        # and only invoke concurrently, which is where the concurrency matters.
        self._receive_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, name=f"sqs-{source.function_id}-{index}", daemon=True)
            for index in range(self.concurrency)
        ]

    def start(self) -> SqsPoller:
        for thread in self._threads:
            thread.start()
        return self

    def request_stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float = 10) -> None:
        for thread in self._threads:
            thread.join(timeout=timeout)

    def _receive_batch(self, sqs: Any) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        window_ends = time.monotonic() + self.source.batching_window_seconds
        while len(batch) < self.source.batch_size and not self._stopping.is_set():
            response = sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(MAX_MESSAGES_PER_RECEIVE, self.source.batch_size - len(batch)),
                WaitTimeSeconds=0 if batch else POLL_WAIT_SECONDS,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            batch.extend(messages)
            if not batch:
                return batch
            if not messages and time.monotonic() >= window_ends:
                break
        return batch

    def _run(self) -> None:
        sqs = self._client_factory()
        while not self._stopping.is_set():
            try:
                with self._receive_lock:
                    batch = self._receive_batch(sqs)
                if batch:
                    self._process(sqs, batch)
            except (BotoCoreError, ClientError) as error:
                if self._stopping.is_set():
                    return
                self._log_sink(self.source.function_id, f"[sqs] polling {self.queue_url} failed: {error}")
                self._stopping.wait(1)

    def _process(self, sqs: Any, batch: list[dict[str, Any]]) -> None:
        event = {"Records": [sqs_record(message, self.queue_arn) for message in batch]}
        result = self._invoke(self.source.function_id, event)
        batch_ids = [message["MessageId"] for message in batch]
        failed = failed_message_ids(result, batch_ids, self.source.report_batch_item_failures)
        done = [message for message in batch if message["MessageId"] not in failed]
        for start in range(0, len(done), MAX_MESSAGES_PER_RECEIVE):
            chunk = done[start : start + MAX_MESSAGES_PER_RECEIVE]
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(chunk)],
            )
        if failed:
            self._log_sink(
                self.source.function_id,
                f"[sqs] {len(failed)} of {len(batch)} record(s) stay queued; retried after the visibility timeout",
            )
