"""Email queue consumer: sends each queued email through Mandrill, exactly once.

Partial batch responses (ReportBatchItemFailures): a record that should be tried again stays
on the queue, hidden for a growing delay; after maxReceiveCount it moves to the DLQ. Records
of one batch are sent concurrently (EMAIL_SEND_CONCURRENCY).
"""

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chimpbridge import settings
from chimpbridge.batch import ConcurrentBatchProcessor
from chimpbridge.logic import email_sender
from chimpbridge.models.email import EmailMessage
from chimpbridge.observability import instrument, logger


def record_handler(record: SQSRecord) -> str:
    message = EmailMessage.model_validate_json(record.body)
    return email_sender.send(message).outcome


@instrument()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    processor = ConcurrentBatchProcessor(settings.load(settings.EmailSettings).send_concurrency, logger=logger)
    with processor(records=event["Records"], handler=record_handler, lambda_context=context):
        processor.process()
    email_sender.back_off(
        [
            email_sender.RetryLater(
                receipt_handle=record.receipt_handle,
                receive_count=int(record.attributes.approximate_receive_count or 1),
            )
            for record in processor.fail_messages
        ]
    )
    return dict(processor.response())
