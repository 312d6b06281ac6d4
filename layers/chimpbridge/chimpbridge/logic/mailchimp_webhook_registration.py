"""``Custom::MailchimpWebhooks``: the audience webhooks that point Mailchimp at our receiver,
registered when the stack is created, kept in line when it is updated, removed when it is deleted.

Every request converges on one state, so any of them may be repeated (CloudFormation retries,
a rollback replays the old properties): each audience of the registration has exactly one
webhook at the receiver's URL with the current token, every event on, the chosen sources.

- Which webhooks are ours: those whose URL starts with the receiver's URL up to the token
  (``WebhookRegistration.url_prefix``). A re-run adopts them instead of adding a second one; a
  rotated token is a PATCH of the URL (Mailchimp validates it with a GET first, so the receiver
  must already accept the new token: the secret's first token is the current one); leftovers
  (an older token) are deleted once the kept webhook is right.
- Create and update never leave an audience without its webhook: the kept one is patched (or a
  new one created) before any other is deleted. Audiences dropped from the configuration lose
  the webhooks of the old and the new URL.
- Failures raise :class:`WebhookRegistrationFailed` with a message for people; the custom
  resource answers FAILED with it, and CloudFormation rolls back.
- Delete removes what it can and never blocks the stack's deletion on something that cannot
  get better: a key Mailchimp refuses (revoked, or the account closed), an audience or webhook
  that is gone, a Mailchimp secret that cannot be read. Those are logged and skipped; only a
  passing failure (Mailchimp busy or unreachable) fails the delete, which can then be retried.
- A stack-created Mailchimp secret holds a placeholder until the operator puts the key in:
  nothing is registered then (``Status`` says so); changing ``Revision`` afterwards registers.
"""

from __future__ import annotations

from typing import Any

from chimpbridge import clients, settings
from chimpbridge.errors import ConfigurationError, MailchimpApiError, WebhookRegistrationFailed
from chimpbridge.models.webhook_registration import RegistrationResult, WebhookRegistration
from chimpbridge.observability import count, logger
from chimpbridge.secrets import MailchimpCredentials, WebhookSecret, get_secret

PLACEHOLDER_KEY = "the Mailchimp secret still holds its placeholder key"
_REFUSED_KEY = (401, 403)


def register(desired: WebhookRegistration) -> RegistrationResult:
    """Create: every audience gets its webhook (one already there is adopted)."""
    return _converge(desired, previous=None)


def update(desired: WebhookRegistration, previous: WebhookRegistration | None) -> RegistrationResult:
    """Update: audiences added get a webhook, kept ones are corrected, removed ones lose theirs.
    ``previous`` is None where the old properties were malformed (they registered nothing)."""
    return _converge(desired, previous)


def unregister(registration: WebhookRegistration | None) -> RegistrationResult:
    """Delete: remove this stack's webhooks from the registration's audiences, as far as can be.
    None: the resource's properties were malformed, so its create registered nothing."""
    result = RegistrationResult()
    if registration is None:
        logger.warning("mailchimp webhooks: nothing to remove (the resource's properties were malformed)")
        return result
    try:
        if _mailchimp_key_is_placeholder():
            return result
    except ConfigurationError as error:
        logger.warning("mailchimp webhooks left in place: the Mailchimp secret cannot be read", extra=_why(error))
        return RegistrationResult(waiting=str(error))
    for audience in registration.audiences:
        try:
            for webhook in _ours(_webhooks(audience), registration):
                _delete(audience, webhook["id"], result)
        except MailchimpApiError as error:
            if error.status in _REFUSED_KEY:
                logger.warning("mailchimp webhooks left in place: Mailchimp refused the key", extra=_why(error))
                return result
            if error.status == 404:
                logger.warning("mailchimp audience gone; nothing to remove", extra={"list_id": audience})
                continue
            raise _failure(error, audience) from None
    return result


def registered(registration: WebhookRegistration) -> dict[str, list[dict[str, Any]]]:
    """This stack's webhooks per audience, as the status shows them: id, events and sources,
    and the URL up to the token (the token itself is a credential). Raises MailchimpApiError."""
    found: dict[str, list[dict[str, Any]]] = {}
    for audience in registration.audiences:
        try:
            webhooks = _ours(_webhooks(audience), registration)
        except MailchimpApiError as error:
            if error.status != 404:
                raise
            webhooks = []
        found[audience] = [
            {
                "id": str(webhook["id"]),
                "url": registration.url_prefix + "<token>",
                "events": sorted(name for name, on in _flags(webhook.get("events")).items() if on),
                "sources": sorted(name for name, on in _flags(webhook.get("sources")).items() if on),
            }
            for webhook in webhooks
        ]
    return found


def _converge(desired: WebhookRegistration, previous: WebhookRegistration | None) -> RegistrationResult:
    if _mailchimp_key_is_placeholder():
        logger.warning("mailchimp webhooks not registered: " + PLACEHOLDER_KEY)
        return RegistrationResult(waiting=PLACEHOLDER_KEY)
    token_secret = get_secret(desired.token_secret_arn, WebhookSecret)
    url = desired.url(token_secret.accepted_tokens[0])
    owners = (desired,) if previous is None else (desired, previous)
    result = RegistrationResult()
    for audience in desired.audiences:
        try:
            _converge_audience(audience, url, owners, signing_key=token_secret.signing_key, result=result)
        except MailchimpApiError as error:
            raise _failure(error, audience, token=url.removeprefix(desired.url_prefix)) from None
    if previous is not None:
        for audience in previous.audiences:
            if audience in desired.audiences:
                continue
            try:
                for webhook in _ours(_webhooks(audience), *owners):
                    _delete(audience, webhook["id"], result)
            except MailchimpApiError as error:
                if error.status != 404:  # an audience deleted in Mailchimp has nothing left to remove
                    raise _failure(error, audience) from None
    return result


def _converge_audience(
    audience: str,
    url: str,
    owners: tuple[WebhookRegistration, ...],
    *,
    signing_key: str | None,
    result: RegistrationResult,
) -> None:
    """``owners[0]`` is the registration wanted now; an update adds the previous one."""
    ours = _ours(_webhooks(audience), *owners)
    wanted = owners[0].settings()
    # Sandbox extension (docs/sandbox.md): a webhook saved with a secret signs its deliveries.
    # Mailchimp never returns the secret, so a signed webhook is always sent it again.
    signing = {"secret": signing_key} if signing_key else {}
    keep = next((webhook for webhook in ours if webhook.get("url") == url), ours[0] if ours else None)
    if keep is None:
        keep = _create(audience, {"url": url, **wanted, **signing}, result)
    else:
        changes = {name: value for name, value in wanted.items() if _flags(keep.get(name)) != value}
        if keep.get("url") != url:
            changes["url"] = url
        if changes or signing:
            keep = _call(clients.marketing().lists.update_list_webhook, audience, keep["id"], {**changes, **signing})
            result.updated.append(audience)
            count("MailchimpWebhookUpdated")
            logger.info("mailchimp webhook updated", extra={"list_id": audience, "webhook_id": keep["id"]})
    result.webhooks[audience] = str(keep["id"])
    for webhook in ours:
        if webhook["id"] != keep["id"]:
            _delete(audience, webhook["id"], result)


def _create(audience: str, body: dict[str, Any], result: RegistrationResult) -> dict[str, Any]:
    try:
        created = _call(clients.marketing().lists.create_list_webhook, audience, body)
    except MailchimpApiError as error:
        # A create whose answer was lost and was sent again finds its own webhook: adopt it.
        if error.status != 400:
            raise
        existing = [hook for hook in _webhooks(audience) if hook.get("url") == body["url"]]
        if not existing:
            raise
        created = existing[0]
    result.created.append(audience)
    count("MailchimpWebhookCreated")
    logger.info("mailchimp webhook created", extra={"list_id": audience, "webhook_id": created["id"]})
    return created


def _delete(audience: str, webhook_id: str, result: RegistrationResult) -> None:
    try:
        _call(clients.marketing().lists.delete_list_webhook, audience, webhook_id)
    except MailchimpApiError as error:
        if error.status != 404:  # deleted meanwhile: what we wanted
            raise
    result.deleted.append(audience)
    count("MailchimpWebhookDeleted")
    logger.info("mailchimp webhook deleted", extra={"list_id": audience, "webhook_id": webhook_id})


def _webhooks(audience: str) -> list[dict[str, Any]]:
    answer = _call(clients.marketing().lists.get_list_webhooks, audience)
    webhooks = answer.get("webhooks") if isinstance(answer, dict) else None
    return [webhook for webhook in webhooks or [] if isinstance(webhook, dict) and "id" in webhook]


def _ours(webhooks: list[dict[str, Any]], *owners: WebhookRegistration) -> list[dict[str, Any]]:
    return [webhook for webhook in webhooks if any(owner.owns(str(webhook.get("url", ""))) for owner in owners)]


def _call(method: Any, *args: Any) -> dict[str, Any]:
    answer = method(*args)
    return answer if isinstance(answer, dict) else {}


def _flags(value: Any) -> dict[str, bool]:
    return {str(name): bool(flag) for name, flag in value.items()} if isinstance(value, dict) else {}


def _mailchimp_key_is_placeholder() -> bool:
    secret_arn = settings.load(settings.MailchimpSettings).secret_arn
    return get_secret(secret_arn, MailchimpCredentials).is_placeholder


def _failure(error: MailchimpApiError, audience: str, token: str = "") -> WebhookRegistrationFailed:
    """What the CloudFormation event shows (crhelper keeps the last 240 characters of longer ones)."""
    log = logger.warning if error.transient else logger.error
    log("mailchimp webhook registration failed", extra={"list_id": audience, **_why(error)})
    count("MailchimpWebhookRegistrationFailed")
    said = f"{error.status} {error.title or error.summary}".strip()
    if error.status in _REFUSED_KEY:
        message = f"Mailchimp refused the API key ({said}): put a valid key in the secret MailchimpSecretArn names"
    elif error.status == 404:
        message = f"audience {audience} not found in this Mailchimp account ({said}): check MailchimpWebhookAudiences"
    elif error.status == 400 and any(item.get("field") == "url" for item in error.errors):
        messages = "; ".join(str(item.get("message", "")) for item in error.errors if item.get("field") == "url")
        message = f"Mailchimp could not validate the webhook URL for audience {audience}: {messages}"
    elif error.transient:
        answer = "did not answer" if error.status is None else f"is busy ({said})"
        message = f"Mailchimp {answer} while registering the webhook of audience {audience}: try the update again"
    else:
        detail = f": {error.detail}" if error.detail else ""
        message = f"Mailchimp answered {said} for the webhook of audience {audience}{detail}"
    if token:  # never show the credential, whatever Mailchimp echoed
        message = message.replace(token, "<token>")
    return WebhookRegistrationFailed(message)


def _why(error: Exception) -> dict[str, Any]:
    if isinstance(error, MailchimpApiError):
        return {"status": error.status, "title": error.title or error.summary}
    return {"error": type(error).__name__}
