"""Mandrill events queue consumer: each queued slice of a delivery is normalised, recorded on
our email records, published on the bus and, for bounces and complaints, suppresses the address.

Partial batch responses (ReportBatchItemFailures): a slice that failed (DynamoDB or EventBridge
trouble) stays on the queue for a growing delay; after maxReceiveCount it moves to the DLQ.
Processing a slice again changes nothing that was done (logic/mandrill_events.py).
"""

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chimpbridge import settings
from chimpbridge.batch import RetryBackoff, consume
from chimpbridge.logic import mandrill_events
from chimpbridge.models.mandrill_events import QueuedEvents
from chimpbridge.observability import instrument

RETRY_BASE_SECONDS = 5
RETRY_MAX_SECONDS = 900


def record_handler(record: SQSRecord) -> int:
    return mandrill_events.process(QueuedEvents.model_validate_json(record.body)).processed


@instrument()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = settings.load(settings.MandrillEventsSettings)
    backoff = RetryBackoff(config.queue_url, RETRY_BASE_SECONDS, RETRY_MAX_SECONDS)
    return consume(
        event, context, record_handler, concurrency=2, backoff=backoff, retried_metric="MandrillEventsRetried"
    )
