"""Powertools' SQS ``BatchProcessor``, processing the records of one batch concurrently.

A queue consumer that calls an API spends its time waiting on the network; sending a batch's
records one after another makes the batch as slow as the sum of its calls. This processor
runs them on a small thread pool instead (the pool size is the consumer's share of the API's
connection limit). Everything else is Powertools': partial batch responses, failure logging,
and the record handler's signature. :func:`consume` is the whole of a queue consumer's
handler: process, report failures, delay their retries, and send what upstream refused for good
straight to the dead-letter queue.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chimpbridge.errors import UpstreamError, is_transient_status
from chimpbridge.observability import count, logger

T = TypeVar("T")


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


@dataclass(frozen=True)
class DeadLetter:
    """Where a record goes at once when upstream refuses it for good (a 4xx other than 408 and
    429: a value Mailchimp will never take, an audience that was deleted, a revoked key).
    Retrying it would only spend the queue's maxReceiveCount, hours of receives, before the
    DLQ; sent now, the DLQ alarm calls a person at once, and a re-drive after the fix applies it."""

    queue_url: str | None
    metric: str


class Unreadable(Exception):
    """A record whose body is not the message its consumer reads (queued under rules that have
    since been tightened, or by mistake): no retry can change it either."""


def read_record(record: SQSRecord, parse: Callable[[str], T]) -> T:
    """``parse(record.body)``; a body it refuses (ValueError, pydantic's ValidationError among
    them) raises :class:`Unreadable`, which goes to the dead-letter queue at once."""
    try:
        return parse(record.body)
    except ValueError as error:
        raise Unreadable(type(error).__name__) from error


def refused_for_good(error: BaseException) -> UpstreamError | None:
    """The upstream error that no retry can change, if ``error`` is one."""
    if isinstance(error, UpstreamError) and error.status is not None and 400 <= error.status < 500:
        return None if is_transient_status(error.status) else error
    return None


def refusal_reason(error: UpstreamError) -> str:
    """What the DLQ message says about its refusal: the service, the status and the provider's
    error name (Mailchimp's title, Mandrill's name), never its free text (it may quote the address)."""
    name = getattr(error, "title", "") or getattr(error, "name", "")
    return f"{error.service} {error.status}" + (f" {name}" if name else "")


def consume(
    event: dict[str, Any],
    context: Any,
    record_handler: Callable[[SQSRecord], Any],
    *,
    concurrency: int,
    backoff: RetryBackoff,
    retried_metric: str,
    dead_letter: DeadLetter | None = None,
) -> dict[str, Any]:
    """Process an SQS event's records concurrently; failed records are reported back
    (ReportBatchItemFailures) and hidden for a growing delay, and a record upstream refused for
    good goes to ``dead_letter`` at once (then counts as done, so Lambda deletes it from the
    queue). Returns the partial batch response."""
    handler = (
        record_handler
        if dead_letter is None or not dead_letter.queue_url
        else _dead_lettering(record_handler, dead_letter)
    )
    processor = ConcurrentBatchProcessor(concurrency, logger=logger)
    with processor(records=event["Records"], handler=handler, lambda_context=context):
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


def _dead_lettering(record_handler: Callable[[SQSRecord], Any], dead_letter: DeadLetter) -> Callable[[SQSRecord], Any]:
    def handle(record: SQSRecord) -> Any:
        try:
            return record_handler(record)
        except (UpstreamError, Unreadable) as error:
            refusal = refused_for_good(error)
            if (refusal is None and not isinstance(error, Unreadable)) or dead_letter.queue_url is None:
                raise
            from chimpbridge.dal import queues  # noqa: PLC0415 - boto3 only when something was refused

            reason = refusal_reason(refusal) if refusal is not None else f"unreadable {error}"
            receives = int(record.attributes.approximate_receive_count or 1)
            # If the DLQ will not take it, this raises and the record stays on its queue.
            queues.dead_letter(dead_letter.queue_url, record.body, reason=reason, receive_count=receives)
            count(dead_letter.metric)
            logger.error(
                "refused for good upstream; sent to the DLQ at once",
                extra={"reason": reason, "message_id": record.message_id, "receives": receives},
            )
            return "dead-lettered"

    return handle
