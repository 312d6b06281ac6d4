"""Signup queue consumer: applies signups that Mailchimp could not take right away.

Partial batch responses (ReportBatchItemFailures): a record that can succeed later stays on
the queue, hidden for a growing delay; after maxReceiveCount it moves to the DLQ (alarmed). One
that Mailchimp refuses for good (a 4xx other than 408 and 429) goes to the DLQ at once, with the
reason. Records of one batch are applied concurrently (SIGNUP_WORKER_CONCURRENCY).
"""

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chimpbridge import settings
from chimpbridge.batch import DeadLetter, RetryBackoff, consume, read_record
from chimpbridge.logic import signup_worker
from chimpbridge.models.signup import QueuedSignup
from chimpbridge.observability import instrument


@instrument()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = settings.load(settings.SignupWorkerSettings)
    backoff = RetryBackoff(config.queue_url, config.retry_base_seconds, config.retry_max_seconds)
    outage = signup_worker.BatchOutage()

    def record_handler(record: SQSRecord) -> str:
        return signup_worker.apply_queued(read_record(record, QueuedSignup.from_json), outage)

    return consume(
        event,
        context,
        record_handler,
        concurrency=config.concurrency,
        backoff=backoff,
        retried_metric="QueuedSignupRetried",
        dead_letter=DeadLetter(config.dead_letter_queue_url, "QueuedSignupDeadLettered"),
    )
