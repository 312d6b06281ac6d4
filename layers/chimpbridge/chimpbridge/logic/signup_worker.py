"""The signup worker: applies signups that waited on the signup queue.

Same rules as the direct path (:func:`~chimpbridge.logic.signup_apply.apply_signup`: an existing
member's details are overwritten only if the signup says ``update_existing``), one
member per call: batch subscribe (``POST /lists/{id}``) has no ``status_if_new`` and would
turn a subscribed person into a pending one (measured and decided in docs/benchmarks.md).

- Applied, or answered for good about the person's address or consent (fake-looking,
  forgotten, cleaned, compliance state, too many signups, invalid): done. The person can no
  longer be told, so it is logged and counted, not retried.
- Refused for good over something else (a 4xx other than 408 and 429: our configuration, such
  as a 400 over an interest or marketing permission id or a merge field whose type changed; a
  revoked key; a deleted audience): raised, and :func:`chimpbridge.batch.consume` sends the
  record to the DLQ at once with the reason; its alarm calls a person, and a DLQ re-drive
  applies it once the setting is fixed.
- Anything else is raised, so the record stays on the queue; :func:`chimpbridge.batch.consume`
  hides it for a growing delay, and after the queue's maxReceiveCount it lands in the DLQ.
  That covers what can pass (408, 429, 5xx, timeouts).
- Once Mailchimp is down for one record of a batch (no answer, or a 5xx after the client's
  retries), the records not started yet are not sent at all (they would only wait out their
  own retries against an outage) and go back likewise. A 429 is not an outage: under the
  shared connection cap every record still gets its own try, so no receive is spent untried.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from chimpbridge.errors import InvalidRequest, Rejected, UpstreamError
from chimpbridge.logic.signup_apply import apply_signup
from chimpbridge.models.signup import QueuedSignup
from chimpbridge.observability import count, logger


class BatchOutage:
    """Whether Mailchimp was down for a record of one batch (its records run on threads). The
    handler makes one per batch, so a new batch tries Mailchimp again."""

    def __init__(self) -> None:
        self._failed = threading.Event()

    def record(self) -> None:
        self._failed.set()

    @property
    def happened(self) -> bool:
        return self._failed.is_set()


def apply_queued(queued: QueuedSignup, outage: BatchOutage) -> str:
    """Apply one queued signup of the batch whose ``outage`` this is; returns what happened.
    Raises when it should be tried again."""
    signup = queued.signup
    waited = (datetime.now(UTC) - queued.queued_at).total_seconds()
    if outage.happened:
        raise UpstreamError("mailchimp", None, "not tried: Mailchimp is down for another record of this batch")
    try:
        # The person is gone: a required merge field they did not fill cannot be asked for any
        # more, and having them on the list beats dropping their signup.
        outcome = apply_signup(signup, skip_merge_validation=True)
    except UpstreamError as failure:
        if failure.transient:
            # 408 and 429 are about this call, not an outage: the other records still get a try.
            if failure.status is None or failure.status >= 500:
                outage.record()
            logger.warning(
                "queued signup not applied now; kept for a retry", extra={"error": str(failure), "email": signup.email}
            )
        else:
            logger.error(
                "queued signup refused by Mailchimp over our configuration; it goes to the DLQ",
                extra={"error": str(failure), "detail": getattr(failure, "detail", ""), "email": signup.email},
            )
            count("QueuedSignupMisconfigured")
        raise
    except (Rejected, InvalidRequest) as final:
        kind = final.kind if isinstance(final, Rejected) else "invalid-request"
        logger.warning("queued signup refused by Mailchimp for good", extra={"kind": kind, "email": signup.email})
        count("QueuedSignupRefused")
        return "refused"
    logger.info("queued signup applied", extra={"outcome": outcome, "email": signup.email, "waited_seconds": waited})
    count("QueuedSignupApplied")
    return outcome
