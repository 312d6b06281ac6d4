"""Powertools' SQS ``BatchProcessor``, processing the records of one batch concurrently.

A queue consumer that calls an API spends its time waiting on the network; sending a batch's
records one after another makes the batch as slow as the sum of its calls. This processor
runs them on a small thread pool instead (the pool size is the consumer's share of the API's
connection limit). Everything else is Powertools': partial batch responses, failure logging,
and the record handler's signature. :func:`consume` is the whole of a queue consumer's
handler: process, report failures, delay their retries.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chimpbridge.observability import count, logger


class ConcurrentBatchProcessor(BatchProcessor):
    def __init__(self, max_workers: int, **kwargs: Any) -> None:
        # A batch whose records all failed is reported record by record like any other, so
        # the caller can still delay their retries; raising would only obscure that.
        super().__init__(EventType.SQS, raise_on_entire_batch_failure=False, **kwargs)
        self.max_workers = max(1, max_workers)

    def process(self) -> list[tuple[Any, ...]]:
        records = list(self.records)
        if len(records) <= 1 or self.max_workers == 1:
            return [self._process_record(record) for record in records]
        # Results keep the records' order; success/failure bookkeeping is list appends.
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(records))) as pool:
            return list(pool.map(self._process_record, records))


@dataclass(frozen=True)
class RetryBackoff:
    """How long a failed record stays hidden: about ``base * 2^(receives - 1)`` seconds with
    jitter, never above ``max_seconds``. Replaces the queue's fixed visibility timeout, so a
    hiccup is retried in seconds and an outage is not hammered."""

    queue_url: str | None
    base_seconds: int
    max_seconds: int

    def delay(self, receive_count: int) -> int:
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(0, receive_count - 1))
        return int(random.uniform(ceiling / 2, ceiling))  # noqa: S311 - jitter, not secrecy


def consume(
    event: dict[str, Any],
    context: Any,
    record_handler: Callable[[SQSRecord], Any],
    *,
    concurrency: int,
    backoff: RetryBackoff,
    retried_metric: str,
) -> dict[str, Any]:
    """Process an SQS event's records concurrently; failed records are reported back
    (ReportBatchItemFailures) and hidden for a growing delay. Returns the partial batch response."""
    processor = ConcurrentBatchProcessor(concurrency, logger=logger)
    with processor(records=event["Records"], handler=record_handler, lambda_context=context):
        processor.process()
    failed = [record for record in processor.fail_messages if isinstance(record, SQSRecord)]
    if failed:
        count(retried_metric, len(failed))
    if failed and backoff.queue_url:
        from chimpbridge.dal import queues  # noqa: PLC0415 - boto3 only when something failed

        delays = {
            record.receipt_handle: backoff.delay(int(record.attributes.approximate_receive_count or 1))
            for record in failed
        }
        refused = queues.change_visibility(backoff.queue_url, delays)
        if refused:
            logger.warning("some retries keep the queue's visibility timeout", extra={"count": refused})
    return dict(processor.response())
