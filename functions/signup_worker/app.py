"""Signup queue consumer: applies signups that Mailchimp could not take right away.

Partial batch responses (ReportBatchItemFailures): a record that can succeed later stays on
the queue, hidden for a growing delay; after maxReceiveCount it moves to the DLQ (alarmed).
Records of one batch are applied concurrently (SIGNUP_WORKER_CONCURRENCY).
"""

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chimpbridge import settings
from chimpbridge.batch import ConcurrentBatchProcessor
from chimpbridge.logic import signup_worker
from chimpbridge.models.signup import QueuedSignup
from chimpbridge.observability import instrument, logger


def record_handler(record: SQSRecord) -> str:
    return signup_worker.apply_queued(QueuedSignup.model_validate_json(record.body))


@instrument()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    concurrency = settings.load(settings.SignupWorkerSettings).concurrency
    processor = ConcurrentBatchProcessor(concurrency, logger=logger)
    signup_worker.begin_batch()
    with processor(records=event["Records"], handler=record_handler, lambda_context=context):
        processor.process()
    signup_worker.retry_later(
        [
            signup_worker.RetryLater(
                receipt_handle=record.receipt_handle,
                receive_count=int(record.attributes.approximate_receive_count or 1),
            )
            for record in processor.fail_messages
        ]
    )
    return dict(processor.response())
