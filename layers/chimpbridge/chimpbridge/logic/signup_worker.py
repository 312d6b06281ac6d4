"""The signup worker: applies signups that waited on the signup queue.

Same upsert as the direct path (:func:`~chimpbridge.logic.signup_apply.apply_signup`), one
member per call: batch subscribe (``POST /lists/{id}``) has no ``status_if_new`` and would
turn a subscribed person into a pending one (measured and decided in docs/benchmarks.md).

- Applied, or answered for good about the person (fake-looking address, forgotten, cleaned):
  done. The person can no longer be told, so it is logged and counted, not retried.
- Anything that can pass (429, 5xx, timeouts, a key being rotated): raised, so the record
  stays on the queue; :func:`retry_later` hides it for a growing delay, and after the queue's
  maxReceiveCount it lands in the DLQ, whose alarm calls a person.
- Once one record of a batch has failed that way, the records not started yet are not sent at
  all (they would only wait out their own retries against an outage) and go back likewise.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from chimpbridge import settings
from chimpbridge.errors import ConfigurationError, InvalidRequest, Rejected, UpstreamError
from chimpbridge.logic.signup_apply import apply_signup
from chimpbridge.models.signup import QueuedSignup
from chimpbridge.observability import count, logger


@dataclass(frozen=True)
class RetryLater:
    receipt_handle: str
    receive_count: int


class BatchOutage:
    """Whether Mailchimp failed a record of the batch being processed (records run on threads)."""

    def __init__(self) -> None:
        self._failed = threading.Event()

    def begin(self) -> None:
        self._failed.clear()

    def record(self) -> None:
        self._failed.set()

    @property
    def happened(self) -> bool:
        return self._failed.is_set()


outage = BatchOutage()


def begin_batch() -> None:
    """Call before each batch: a new batch tries Mailchimp again."""
    outage.begin()


def apply_queued(queued: QueuedSignup) -> str:
    """Apply one queued signup; returns what happened. Raises when it should be tried again."""
    signup = queued.signup
    waited = (datetime.now(UTC) - queued.queued_at).total_seconds()
    if outage.happened:
        raise UpstreamError("mailchimp", None, "not tried: Mailchimp failed another record of this batch")
    try:
        # The person is gone: a required merge field they did not fill cannot be asked for any
        # more, and having them on the list beats dropping their signup.
        outcome = apply_signup(signup, skip_merge_validation=True)
    except (UpstreamError, ConfigurationError):
        outage.record()
        raise
    except (Rejected, InvalidRequest) as final:
        kind = final.kind if isinstance(final, Rejected) else "invalid-request"
        logger.warning("queued signup refused by Mailchimp for good", extra={"kind": kind, "email": signup.email})
        count("QueuedSignupRefused")
        return "refused"
    logger.info("queued signup applied", extra={"outcome": outcome, "email": signup.email, "waited_seconds": waited})
    count("QueuedSignupApplied")
    return outcome


def retry_later(records: list[RetryLater]) -> None:
    """Hide failed records for base * 2^(receives - 1) seconds (full jitter, capped), so a
    Mailchimp outage is not hammered every VisibilityTimeout."""
    if not records:
        return
    config = settings.load(settings.SignupWorkerSettings)
    count("QueuedSignupRetried", len(records))
    if config.queue_url is None:
        return
    from chimpbridge.dal import queues  # noqa: PLC0415 - boto3 only when something failed

    delays = {
        record.receipt_handle: _delay(record.receive_count, config.retry_base_seconds, config.retry_max_seconds)
        for record in records
    }
    refused = queues.change_visibility(config.queue_url, delays)
    if refused:
        logger.warning("could not delay some retries", extra={"refused": refused})


def _delay(receive_count: int, base: int, cap: int) -> int:
    ceiling = min(cap, base * 2 ** max(0, receive_count - 1))
    return max(1, int(random.uniform(ceiling / 2, ceiling))) if ceiling else 0  # noqa: S311 - jitter, not secrecy
