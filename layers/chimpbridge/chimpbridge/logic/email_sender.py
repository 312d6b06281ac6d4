"""Sending one queued email through Mandrill, exactly once.

The send runs inside Powertools Idempotency, keyed by the message's idempotency key (hook,
identity, flow): an SQS redelivery, a re-drive from the DLQ or a second hook delivery finds
the stored outcome and sends nothing.

Outcomes, per Mandrill's per-recipient ``status`` (an HTTP 200 is not a delivery):

* ``sent``: a recipient is ``sent``, ``queued`` or ``scheduled``.
* ``rejected``: every recipient is ``rejected`` or ``invalid``. Permanent: logged with the
  reason, counted (``EmailRejected``, alarmed in the template), stored, never retried.
* an exception: 429, 5xx, connection failures, and configuration problems (bad key, unknown
  template). Nothing is stored, so the record is retried through the queue and, after
  ``maxReceiveCount``, kept in the DLQ for a re-drive.
* the answer was lost: Mandrill may or may not have sent it (a read timeout or a dropped
  connection; the transport never repeats such a POST by itself). Mandrill has no idempotency
  key, so nothing can tell. Counted as ``EmailSendUncertain`` either way. With
  ``EMAIL_ON_UNCERTAIN_SEND=resend`` (default) it is retried through the queue like a 5xx:
  never a missing email, a duplicate only if Mandrill had sent it (the same choice a Lambda
  that dies mid-call makes once its attempt expires). With ``skip`` the outcome ``uncertain``
  is stored and it is never resent: never a duplicate, a missing email only if Mandrill had
  not sent it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chimpbridge import clients, settings
from chimpbridge.dal import idempotency
from chimpbridge.deadline import remaining_invocation_seconds
from chimpbridge.errors import Busy, ConfigurationError, MandrillApiError, UpstreamError
from chimpbridge.logic import email_content
from chimpbridge.models.email import (
    SEND_PERMANENT_STATUSES,
    SEND_SUCCESS_STATUSES,
    EmailMessage,
    RecipientResult,
    SendOutcome,
)
from chimpbridge.observability import count, logger

SECONDS_PER_DAY = 86_400
# A send is not started with less time left than this: cut short, its answer would be lost and
# the email neither known sent nor safe to resend. Deferred, it is retried from the queue.
MIN_SECONDS_FOR_A_SEND = 5.0


def send(message: EmailMessage) -> SendOutcome:
    """Send ``message`` unless it was sent (or permanently rejected) before. Raises when it
    should be tried again later."""
    config = settings.load(settings.EmailSettings)
    table = settings.load(settings.IdempotencySettings).table_name
    send_once = _send_once(table, config.dedupe_days * SECONDS_PER_DAY)
    try:
        outcome = send_once(message=message)
    except Exception as error:
        _raise_domain_error(error)
        raise
    _report(message, outcome)
    return outcome


def _deliver(*, message: EmailMessage) -> SendOutcome:
    config = settings.load(settings.EmailSettings)
    flows = settings.load(settings.EmailFlowSettings).flows
    flow = flows.get(message.hook)
    if flow is None:
        raise ConfigurationError(f"EMAIL_FLOWS has no hook {message.hook!r} (queued by an older configuration?)")
    request = email_content.build(message, flow, config)
    remaining = remaining_invocation_seconds()
    if remaining is not None and remaining < MIN_SECONDS_FOR_A_SEND:
        raise UpstreamError("mandrill", None, "not enough time left in this invocation to wait for the answer")
    messages_api = clients.transactional().messages
    call = messages_api.send_template if request.template_name is not None else messages_api.send
    try:
        results = call(request.body())
    except MandrillApiError as error:
        if not _answer_lost(error):
            raise
        count("EmailSendUncertain")
        logger.warning(
            "Mandrill's answer was lost: the email may or may not have been sent",
            extra={"idempotency_key": message.idempotency_key, "policy": config.on_uncertain_send},
        )
        if config.on_uncertain_send == "resend":
            raise
        return SendOutcome(outcome="uncertain", api_call=request.api_call)
    return _outcome(results, request.api_call)


def _answer_lost(error: MandrillApiError) -> bool:
    """The request may have reached Mandrill but no answer came back (a read timeout or a
    dropped connection; the transport does not repeat those for a POST): it may have been sent."""
    return error.answer_lost


def _outcome(results: Any, api_call: Any) -> SendOutcome:
    if not isinstance(results, list) or not results:
        raise MandrillApiError("mandrill", 200, "no per-recipient results in the answer")
    recipients = [
        RecipientResult(
            status=str(item.get("status") or "unknown"),
            reject_reason=item.get("reject_reason") or None,
            mandrill_id=item.get("_id"),
        )
        for item in results
        if isinstance(item, dict)
    ]
    statuses = {recipient.status for recipient in recipients}
    if statuses and statuses <= SEND_PERMANENT_STATUSES:
        return SendOutcome(outcome="rejected", recipients=recipients, api_call=api_call)
    unknown = statuses - SEND_SUCCESS_STATUSES - SEND_PERMANENT_STATUSES
    if unknown:
        # Mandrill took it; resending could be a second email. Say so, and treat it as sent.
        logger.warning("unknown Mandrill recipient status", extra={"statuses": sorted(unknown)})
    return SendOutcome(outcome="sent", recipients=recipients, api_call=api_call)


def _report(message: EmailMessage, outcome: SendOutcome) -> None:
    context = {
        "hook": message.hook,
        "identity_id": str(message.identity_id),
        "idempotency_key": message.idempotency_key,
        "outcome": outcome.outcome,
    }
    if outcome.duplicate:
        count("EmailDuplicateSkipped")
        logger.info("email already handled; not sent again", extra=context)
    elif outcome.outcome == "sent":
        count("EmailSent")
        logger.info("email sent", extra={**context, "statuses": [r.status for r in outcome.recipients]})
    elif outcome.outcome == "rejected":
        count("EmailRejected")
        logger.warning("email rejected by Mandrill; not retried", extra={**context, "reasons": outcome.reject_reasons})
    else:
        logger.error(
            "email not resent after a lost answer (EMAIL_ON_UNCERTAIN_SEND=skip); "
            "check Mandrill's activity for the metadata idempotency_key",
            extra=context,
        )


def _as_duplicate(outcome: SendOutcome) -> SendOutcome:
    return outcome.model_copy(update={"duplicate": True})


@functools.cache
def _send_once(table_name: str, expires_after: int) -> Callable[..., SendOutcome]:
    return idempotency.once(
        _deliver,
        table_name=table_name,
        key_prefix="email-send",
        data_keyword="message",
        key_path="idempotency_key",
        result_model=SendOutcome,
        expires_after_seconds=expires_after,
        on_repeat=_as_duplicate,
    )


def _raise_domain_error(error: Exception) -> None:
    from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: PLC0415 - see dal/idempotency.py
        IdempotencyAlreadyInProgressError,
    )

    if isinstance(error, IdempotencyAlreadyInProgressError):
        raise Busy("another attempt is sending this email right now") from None


def clear() -> None:
    """Forget the idempotent wrapper (tests that switch tables call this)."""
    _send_once.cache_clear()
    email_content.bundle_template.cache_clear()
