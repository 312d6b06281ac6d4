"""``POST /hooks/<name>``: accept a web hook from Ory Kratos and queue its email.

Order matters: authenticate first (a wrong key learns nothing, not even which hooks exist or
what the body or the headers should look like), then validate, then deduplicate, then queue.
Nothing calls Mandrill here; the email sender does, from the queue.

Deduplication: one Powertools Idempotency record per (hook, identity, flow). Kratos retries
a delivery (up to 3 attempts) with the same ``Ory-Webhook-Trigger-ID`` and the same rendered
body, so every retry of a trigger carries the same key; so does a second delivery of the same
registration under another trigger id (or none). A repeat is answered from the first delivery
(``duplicate: true``) and queues nothing. One record rather than one per trigger id and one
per registration: the second would never catch anything the first does not, and would cost
two more DynamoDB writes on every hook. The trigger id travels with the message and the logs.

The queued message carries the key, and the sender is idempotent on it too: that is what makes
the email exactly-once even when SQS delivers a message twice or the hook record has expired.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import BaseModel, ValidationError

from chimpbridge import settings
from chimpbridge.dal import idempotency, queues
from chimpbridge.errors import FieldError, InvalidRequest, PayloadTooLarge, Rejected
from chimpbridge.logic import email_payload, hook_keys
from chimpbridge.logic.signup_language import mailchimp_language
from chimpbridge.models.checks import invalid_request, read_json
from chimpbridge.models.email import EmailMessage, Recipient, idempotency_key
from chimpbridge.models.hooks import (
    MAX_BODY_BYTES,
    MAX_TRIGGER_ID_LENGTH,
    NIL_IDENTITY_ID,
    TRIGGER_ID,
    TRIGGER_ID_HEADER,
    HookAccepted,
    HookDelivery,
    HookRequest,
)
from chimpbridge.models.signup import QueuedSignup, Signup
from chimpbridge.observability import count, logger
from chimpbridge.secrets import HookKeys, get_secret

# Idempotency records of deliveries are "hook-registration#<hash>" (template.yaml scopes the
# hook to it). Every hook uses this prefix; the key itself names the hook.
IDEMPOTENCY_KEY_PREFIX = "hook-registration"
QUEUE_ONCE = idempotency.Once(
    key_prefix=IDEMPOTENCY_KEY_PREFIX,
    key_path="message.idempotency_key",
    result_model=HookAccepted,
    busy_message="This delivery is being queued by another request right now; try again shortly.",
)
INVALID_BODY = "The hook body is not what the shipped Jsonnet produces."
PRE_PERSIST_MESSAGE = (
    "The identity id is the all-zero UUID: Kratos ran this web_hook before the identity was stored. "
    "Configure it under selfservice.flows.registration.after (and after.<method>.hooks for each "
    "method that has its own list, such as password and oidc) with response.ignore: true, so it "
    "runs after the identity is persisted and never blocks a registration."
)


class HookIntake(BaseModel):
    """What one accepted delivery puts on the queues."""

    trigger_id: str | None
    message: EmailMessage
    signup: QueuedSignup | None = None


def accept(delivery: HookDelivery, read_body: Callable[[], bytes]) -> HookAccepted:
    """Authenticate, validate and queue one delivery; repeats are answered from the first.
    ``read_body`` (decoding may fail) is called only once the caller is authenticated."""
    config = settings.load(settings.HookSettings)
    hook_keys.verify(
        delivery.credential.get_secret_value() if delivery.credential else None,
        get_secret(config.keys_secret_arn, HookKeys).accepted_keys,
    )
    trigger_id = _trigger_id(delivery.trigger_id)
    flows = settings.load(settings.EmailFlowSettings).flows
    if delivery.hook not in flows:
        count("HookInvalid")
        logger.warning("hook not configured in EMAIL_FLOWS", extra={"hook": delivery.hook})
        raise Rejected(
            "hook-not-configured",
            f"No email is configured for the hook {delivery.hook!r}. Configured hooks: {', '.join(sorted(flows))}.",
        )
    request = _parse(read_body())
    if request.identity_id == NIL_IDENTITY_ID:
        count("HookMisconfigured")
        logger.warning("hook called before the identity was stored", extra={"hook": delivery.hook})
        raise Rejected("hook-not-post-persist", PRE_PERSIST_MESSAGE)

    payload = email_payload.allowed(request.transient_payload, flows[delivery.hook].payload_keys)
    if payload.dropped:
        # By number only: a member that was not allowed may hold a secret (a cookie, a token).
        count("HookPayloadDropped", payload.dropped)
        logger.info("transient payload members left out", extra={"hook": delivery.hook, "dropped": payload.dropped})
    intake = _intake(delivery, request, config, trigger_id, payload.values)
    accepted = QUEUE_ONCE.run(_queue, intake=intake, expires_after_seconds=config.dedupe_seconds)

    count("HookDuplicate" if accepted.duplicate else "HookQueued")
    if accepted.newsletter == "queued" and not accepted.duplicate:
        count("NewsletterOptInQueued")
    logger.info(
        "hook accepted",
        extra={
            "hook": delivery.hook,
            "identity_id": str(request.identity_id),
            "idempotency_key": accepted.idempotency_key,
            "trigger_id": trigger_id,
            "duplicate": accepted.duplicate,
            "newsletter": accepted.newsletter,
        },
    )
    return accepted


def _trigger_id(header: str | None) -> str | None:
    """The ``Ory-Webhook-Trigger-ID`` header, checked once the caller is authenticated (Kratos
    sends a UUID; anything else is the caller's mistake, a 422 rather than a failure of ours)."""
    if header is None or TRIGGER_ID.fullmatch(header):
        return header
    count("HookInvalid")
    logger.warning("hook trigger id rejected", extra={"length": len(header)})
    raise InvalidRequest(
        f"The {TRIGGER_ID_HEADER} header is not a trigger id.",
        [FieldError(TRIGGER_ID_HEADER, f"must be 1 to {MAX_TRIGGER_ID_LENGTH} printable characters without spaces")],
    )


def _parse(body: bytes) -> HookRequest:
    if len(body) > MAX_BODY_BYTES:
        count("HookInvalid")
        raise PayloadTooLarge(f"The body is larger than {MAX_BODY_BYTES} bytes; send only the Jsonnet's fields.")
    try:
        return HookRequest.model_validate(read_json(body))
    except (InvalidRequest, ValidationError) as exc:
        invalid = exc if isinstance(exc, InvalidRequest) else invalid_request(exc, INVALID_BODY)
        # Kratos ignores the answer (response.ignore: true): these logs are where it shows.
        count("HookInvalid")
        logger.warning("hook body rejected", extra={"fields": [error.field for error in invalid.errors]})
        raise invalid from None


def _intake(
    delivery: HookDelivery,
    request: HookRequest,
    config: settings.HookSettings,
    trigger_id: str | None,
    payload: dict[str, email_payload.Scalar],
) -> HookIntake:
    now = datetime.now(UTC)
    message = EmailMessage(
        idempotency_key=idempotency_key(delivery.hook, request.identity_id, request.flow.id),
        hook=delivery.hook,
        identity_id=request.identity_id,
        flow_id=request.flow.id,
        flow_type=request.flow.type,
        recipient=Recipient(email=request.email, name=request.name, locale=request.locale),
        transient_payload=payload,
        trigger_id=trigger_id,
        request_id=delivery.request_id,
        queued_at=now,
    )
    signup = None
    if request.newsletter_opt_in(config.newsletter_trait) and config.list_id:
        merge_fields = {"FNAME": request.name.first_name, "LNAME": request.name.last or ""}
        signup = QueuedSignup(
            signup=Signup(
                list_id=config.list_id,
                email=request.email,
                status_if_new="pending",
                merge_fields={name: value for name, value in merge_fields.items() if value},
                language=mailchimp_language(request.locale) if request.locale else None,
                timestamp_signup=now,
                source="registration-hook",
            ),
            queued_at=now,
            reason=f"newsletter opt-in at {delivery.hook}",
            request_id=delivery.request_id,
        )
    return HookIntake(trigger_id=trigger_id, message=message, signup=signup)


def _queue(*, intake: HookIntake) -> HookAccepted:
    config = settings.load(settings.HookSettings)
    queues.send(config.email_queue_url, intake.message.model_dump_json(exclude_none=True))
    if intake.signup is not None and config.signup_queue_url:
        queues.send(config.signup_queue_url, intake.signup.to_json())
    return HookAccepted(
        hook=intake.message.hook,
        idempotency_key=intake.message.idempotency_key,
        newsletter="queued" if intake.signup is not None else "not-requested",
    )


def clear() -> None:
    """Forget the idempotent wrappers (tests that switch tables call this)."""
    idempotency.clear()
