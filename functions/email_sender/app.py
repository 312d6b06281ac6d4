"""Email queue consumer: sends each queued email through Mandrill, exactly once.

Partial batch responses (ReportBatchItemFailures): a record that should be tried again stays
on the queue, hidden for a growing delay; after maxReceiveCount it moves to the DLQ. One that
Mandrill refuses for good (a 4xx other than 408 and 429) goes to the DLQ at once, with the
reason. Records of one batch are sent concurrently (EMAIL_SEND_CONCURRENCY).
"""

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chimpbridge import settings
from chimpbridge.batch import DeadLetter, RetryBackoff, consume, read_record
from chimpbridge.logic import email_sender
from chimpbridge.models.email import EmailMessage
from chimpbridge.observability import instrument


def record_handler(record: SQSRecord) -> str:
    message = read_record(record, EmailMessage.model_validate_json)
    return email_sender.send(message).outcome


@instrument()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = settings.load(settings.EmailSettings)
    backoff = RetryBackoff(config.queue_url, config.retry_base_seconds, config.retry_max_seconds)
    return consume(
        event,
        context,
        record_handler,
        concurrency=config.send_concurrency,
        backoff=backoff,
        retried_metric="EmailRetried",
        dead_letter=DeadLetter(config.dead_letter_queue_url, "EmailDeadLettered"),
    )
