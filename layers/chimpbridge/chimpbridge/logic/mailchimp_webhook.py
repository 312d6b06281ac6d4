"""``/webhooks/mailchimp/{token}``: Mailchimp's audience webhook, published as events on the bus.

Order matters: the token first (wrong: 404, nothing read), then the signature over the raw
body when a signing key is configured (bad: 401), then the payload, then publish-once.

Publish-once: one Powertools Idempotency record per (type, list, member or campaign,
fired_at). Mailchimp delivers at least once and retries a failed delivery for 75 minutes; a
repeat of a published delivery is answered 200 from the record and publishes nothing. The
record is complete only after EventBridge accepted the event: a failed publish removes it and
answers 503, so Mailchimp's retry publishes. A repeat while the first is still publishing is
answered 429 (Mailchimp retries that too).

Unknown ``type`` values are answered 200 and not published (counted and logged): a new kind
of Mailchimp event must get its own documented detail before applications see it, and any
other answer would have Mailchimp retry it for 75 minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chimpbridge import settings
from chimpbridge.dal import events, idempotency
from chimpbridge.errors import InvalidRequest, NotFound, PayloadTooLarge, Unauthorized
from chimpbridge.logic import mailchimp_payload
from chimpbridge.logic.mailchimp_webhook_auth import verify_signature, verify_token
from chimpbridge.models.audience_events import EVENT_SOURCE, AudienceEvent, WebhookAnswer, WebhookDelivery
from chimpbridge.observability import count, logger
from chimpbridge.secrets import WebhookSecret, get_secret

# Idempotency records are "mailchimp-webhook#<hash>" (template.yaml scopes the function to it).
IDEMPOTENCY_KEY_PREFIX = "mailchimp-webhook"
PUBLISH_ONCE = idempotency.Once(
    key_prefix=IDEMPOTENCY_KEY_PREFIX,
    key_path="dedupe_key",
    result_model=WebhookAnswer,
    busy_message="This delivery is being published by another request right now; try again shortly.",
    prompt=True,
)


def validate(delivery: WebhookDelivery) -> WebhookAnswer:
    """GET or HEAD (Mailchimp validates the URL when a webhook is saved): 200 for the right token."""
    _authenticate(delivery)
    return WebhookAnswer(status="ok")


def accept(delivery: WebhookDelivery, read_body: Callable[[], bytes]) -> WebhookAnswer:
    """Authenticate, parse and publish one POST; a repeated delivery is answered from the first.
    ``read_body`` (decoding may fail) is called only once the token is checked."""
    config = settings.load(settings.MailchimpWebhookSettings)
    secret = _authenticate(delivery)
    body = read_body()
    if len(body) > config.max_body_bytes:
        count("MailchimpWebhookInvalid")
        raise PayloadTooLarge(f"The body is larger than {config.max_body_bytes} bytes.")
    if secret.signing_key:
        try:
            verify_signature(
                delivery.signature,
                body,
                key=secret.signing_key,
                now=time.time(),
                tolerance_seconds=config.signature_tolerance_seconds,
            )
        except Unauthorized:
            count("MailchimpWebhookBadSignature")
            logger.warning("mailchimp webhook signature refused", extra={"request_id": delivery.request_id})
            raise
    try:
        document = mailchimp_payload.parse_form(body)
        event = mailchimp_payload.to_event(document, config.sources)
    except InvalidRequest:
        count("MailchimpWebhookInvalid")
        raise
    if event is None:
        kind = str(document.get("type", ""))[:50]
        count("MailchimpWebhookIgnored")
        logger.warning("mailchimp webhook type not published", extra={"type": kind})
        return WebhookAnswer(status="ignored", type=kind)

    answer = PUBLISH_ONCE.run(_publish, event=event, expires_after_seconds=config.dedupe_seconds)
    count("MailchimpEventDuplicate" if answer.duplicate else "MailchimpEventPublished")
    logger.info(
        "mailchimp webhook accepted",
        extra={
            "detail_type": event.detail_type,
            "list_id": event.detail.list_id,
            "event_id": answer.event_id,
            "duplicate": answer.duplicate,
        },
    )
    return answer


def _authenticate(delivery: WebhookDelivery) -> WebhookSecret:
    secret = get_secret(settings.load(settings.MailchimpWebhookSettings).secret_arn, WebhookSecret)
    try:
        verify_token(delivery.token.get_secret_value(), secret.accepted_tokens)
    except NotFound:
        count("MailchimpWebhookUnknownToken")
        raise
    return secret


def _publish(*, event: AudienceEvent) -> WebhookAnswer:
    config = settings.load(settings.MailchimpWebhookSettings)
    event_id = events.publish(
        events.BusEvent(
            bus_name=config.event_bus_name,
            source=EVENT_SOURCE,
            detail_type=event.detail_type,
            detail=event.detail.to_json(),
        )
    )
    return WebhookAnswer(
        status="published", type=event.detail.mailchimp_type, detail_type=event.detail_type, event_id=event_id
    )


def clear() -> None:
    """Forget the idempotent wrappers (tests that switch tables call this)."""
    idempotency.clear()
