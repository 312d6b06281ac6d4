"""Powertools' SQS ``BatchProcessor``, processing the records of one batch concurrently.

A queue consumer that calls an API spends its time waiting on the network; sending a batch's
records one after another makes the batch as slow as the sum of its calls. This processor
runs them on a small thread pool instead (the pool size is the consumer's share of the API's
connection limit). Everything else is Powertools': partial batch responses, failure logging,
and the record handler's signature.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType


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
