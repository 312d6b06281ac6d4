"""Sending one queued email through Mandrill, exactly once.

The send runs inside Powertools Idempotency, keyed by the message's idempotency key (hook,
identity, flow): an SQS redelivery, a re-drive from the DLQ or a second hook delivery finds
the stored outcome and sends nothing.

Outcomes, per Mandrill's per-recipient ``status`` (an HTTP 200 is not a delivery):

* ``sent``: a recipient is ``sent``, ``queued`` or ``scheduled``.
* ``suppressed``: the address is suppressed (an earlier hard bounce, spam complaint,
  unsubscribe or Mandrill rejection: logic/mandrill_events.py). Nothing is sent; logged with
  the address masked, counted (``EmailSuppressed``), never retried, not remembered (so a
  message re-driven after the mark is lifted is sent).
* ``rejected``: every recipient is ``rejected`` or ``invalid``. Permanent: logged with the
  reason, counted (``EmailRejected``, alarmed in the template), stored, never retried.
* an exception: 429, 500, 503, a connection that never opened, and configuration problems
  (bad key, unknown template): nothing was sent (Mandrill said so, or never got the request).
  Nothing is stored, so the record is retried through the queue and, after
  ``maxReceiveCount``, kept in the DLQ for a re-drive. So is a send deferred for lack of time.
* the answer was lost: Mandrill may or may not have sent it (a read timeout or a dropped
  connection, or a 502/504: a gateway in front of Mandrill gave up waiting on it, and Mandrill
  may still have sent the email; the transport never repeats such a POST by itself). Mandrill
  has no idempotency key, so nothing can tell. Counted as ``EmailSendUncertain`` either way. With
  ``EMAIL_ON_UNCERTAIN_SEND=resend`` (default) it is retried through the queue like a 5xx:
  never a missing email, a duplicate only if Mandrill had sent it (the same choice a Lambda
  that dies mid-call makes once its attempt expires). With ``skip`` the outcome ``uncertain``
  is stored and it is never resent: never a duplicate, a missing email only if Mandrill had
  not sent it.

A send starts only with time for its whole answer: connecting, the full read timeout, and the
margin the transport keeps before the Lambda deadline (:func:`seconds_needed_for_a_send`).
With less time left the record is deferred (retried from the queue, nothing sent): a send cut
short by the deadline would be a lost answer, and by default a second email.
"""

from __future__ import annotations

from typing import Any

from chimpbridge import clients, settings
from chimpbridge.dal import idempotency
from chimpbridge.dal.email_records import EmailRecords, Suppression, address_hash
from chimpbridge.deadline import DEADLINE_MARGIN_SECONDS, remaining_invocation_seconds
from chimpbridge.errors import ConfigurationError, MandrillApiError, UpstreamError
from chimpbridge.logic import email_content
from chimpbridge.models.email import (
    ADDRESS_REJECT_REASONS,
    SEND_PERMANENT_STATUSES,
    SEND_SUCCESS_STATUSES,
    EmailMessage,
    RecipientResult,
    SendOutcome,
)
from chimpbridge.observability import count, logger

SECONDS_PER_DAY = 86_400
# Idempotency records of sends are "email-send#<hash>" (template.yaml scopes the sender to it).
IDEMPOTENCY_KEY_PREFIX = "email-send"
SEND_ONCE = idempotency.Once(
    key_prefix=IDEMPOTENCY_KEY_PREFIX,
    key_path="idempotency_key",
    result_model=SendOutcome,
    busy_message="another attempt is sending this email right now",
)
# Gateway statuses: a proxy in front of Mandrill answered because Mandrill did not (in time);
# the send may have happened. Other 5xx come from Mandrill itself: nothing was sent.
GATEWAY_STATUSES = frozenset({502, 504})


def seconds_needed_for_a_send(http: settings.HttpSettings) -> float:
    """Time a send must have left when it starts, so its answer is never cut off: the connect
    and read timeouts, and the margin the transport keeps before the invocation deadline."""
    return http.connect_timeout + http.read_timeout + DEADLINE_MARGIN_SECONDS


def send(message: EmailMessage) -> SendOutcome:
    """Send ``message`` unless it was sent (or permanently rejected) before. Raises when it
    should be tried again later."""
    config = settings.load(settings.EmailSettings)
    suppressed = _suppression(message)
    if suppressed is not None:
        outcome = SendOutcome(outcome="suppressed", suppressed_reason=suppressed.reason)
        _report(message, outcome)
        return outcome
    outcome = SEND_ONCE.run(_deliver, message=message, expires_after_seconds=config.dedupe_days * SECONDS_PER_DAY)
    if outcome.outcome == "rejected" and not outcome.duplicate:
        _suppress_rejected(message, outcome)
    _report(message, outcome)
    return outcome


def _records() -> EmailRecords | None:
    table = settings.load(settings.SuppressionSettings).state_table
    return EmailRecords(table) if table else None


def _suppression(message: EmailMessage) -> Suppression | None:
    records = _records()
    return records.suppression(address_hash(message.recipient.email)) if records else None


def _suppress_rejected(message: EmailMessage, outcome: SendOutcome) -> None:
    """Mandrill rejected the address for its own sake (its reject list): suppress it here too."""
    reasons = [r.reject_reason for r in outcome.recipients if r.reject_reason in ADDRESS_REJECT_REASONS]
    records = _records()
    if reasons and records is not None:
        records.suppress(address_hash(message.recipient.email), f"reject:{reasons[0]}", message.idempotency_key)


def _deliver(*, message: EmailMessage) -> SendOutcome:
    config = settings.load(settings.EmailSettings)
    flows = settings.load(settings.EmailFlowSettings).flows
    flow = flows.get(message.hook)
    if flow is None:
        raise ConfigurationError(f"EMAIL_FLOWS has no hook {message.hook!r} (queued by an older configuration?)")
    request = email_content.build(message, flow, config)
    if request.dropped_payload:  # queued before the flow's payload_keys changed, or by another producer
        count("EmailPayloadDropped", request.dropped_payload)
    needed = seconds_needed_for_a_send(settings.load(settings.HttpSettings))
    remaining = remaining_invocation_seconds()
    if remaining is not None and remaining < needed:
        raise UpstreamError(
            "mandrill", None, f"deferred: {remaining:.1f} s left in this invocation, a send needs {needed:.1f} s"
        )
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
    """The request may have reached Mandrill but no answer from Mandrill came back (a read
    timeout, a dropped connection, or a gateway's 502/504; the transport does not repeat those
    for a POST): it may have been sent. A 500 or 503 is Mandrill's own answer: not sent."""
    return error.answer_lost or error.status in GATEWAY_STATUSES


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
    if outcome.outcome == "suppressed":
        count("EmailSuppressed")
        logger.warning(
            "email not sent: the address is suppressed",
            extra={**context, "email": message.recipient.email, "reason": outcome.suppressed_reason},
        )
    elif outcome.duplicate:
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


def clear() -> None:
    """Forget the idempotent wrapper and cached templates (tests that switch tables call this)."""
    idempotency.clear()
    email_content.bundle_template.cache_clear()
