"""``Custom::MandrillWebhook``: the Mandrill webhook that points Mandrill at our receiver,
added when the stack is created, kept in line when it is updated, removed when it is deleted.

Every request converges on one state, so any of them may be repeated: exactly one webhook at
the receiver's URL, with the configured events, whose key is the first of the webhook keys
secret. A webhook already at that URL is adopted (its events corrected) instead of a second
one being added. An update that moves the URL adds the new webhook before it deletes the old.
Mandrill checks a URL with a HEAD when a webhook is saved: the receiver must be live first
(template.yaml orders it so).

Delete removes the webhook and never blocks the stack's deletion on something that cannot get
better (a refused key, a webhook already gone). A stack-created Mandrill secret holds a
placeholder until the operator puts the key in: nothing is registered then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chimpbridge import clients, settings
from chimpbridge.dal import webhook_keys
from chimpbridge.errors import MandrillApiError, WebhookRegistrationFailed
from chimpbridge.observability import count, logger
from chimpbridge.secrets import MAILCHIMP_KEY_PLACEHOLDER_PREFIX, MandrillCredentials, get_secret

MANDRILL_WEBHOOK_EVENTS = (
    "send",
    "deferral",
    "hard_bounce",
    "soft_bounce",
    "delivered",
    "open",
    "click",
    "spam",
    "unsub",
    "reject",
    "blacklist",
    "whitelist",
)
DESCRIPTION = "chimpbridge: email tracking and suppression"
_REFUSED_KEY = (401, 403)


@dataclass(frozen=True)
class MandrillWebhookRegistration:
    url: str
    secret_arn: str
    events: tuple[str, ...] = MANDRILL_WEBHOOK_EVENTS

    @classmethod
    def from_properties(cls, properties: Any) -> MandrillWebhookRegistration:
        if not isinstance(properties, dict):
            raise WebhookRegistrationFailed("the resource has no properties")
        url, secret_arn = properties.get("Url"), properties.get("WebhookKeysSecretArn")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise WebhookRegistrationFailed("Url must be the receiver's http(s) URL")
        if not isinstance(secret_arn, str) or not secret_arn:
            raise WebhookRegistrationFailed("WebhookKeysSecretArn must name the webhook keys secret")
        events = properties.get("Events") or list(MANDRILL_WEBHOOK_EVENTS)
        unknown = sorted(set(events) - set(MANDRILL_WEBHOOK_EVENTS)) if isinstance(events, list) else ["?"]
        if unknown:
            raise WebhookRegistrationFailed("Events must be Mandrill webhook events: " + ", ".join(unknown))
        return cls(url=url, secret_arn=secret_arn, events=tuple(dict.fromkeys(events)))

    @classmethod
    def previous(cls, properties: Any) -> MandrillWebhookRegistration | None:
        try:
            return cls.from_properties(properties)
        except WebhookRegistrationFailed:
            return None


@dataclass
class MandrillRegistrationResult:
    status: str = "registered"
    webhook_id: int | None = None
    actions: list[str] = field(default_factory=list)

    def attributes(self) -> dict[str, str]:
        return {"Status": self.status, "WebhookId": "" if self.webhook_id is None else str(self.webhook_id)}


def register(
    desired: MandrillWebhookRegistration, previous: MandrillWebhookRegistration | None = None
) -> MandrillRegistrationResult:
    """Create or update: one webhook at ``desired.url`` with its events; its key in the secret."""
    result = MandrillRegistrationResult()
    if _key_is_placeholder():
        result.status = "waiting for the Mandrill key (put it in the Mandrill secret, then change the revision)"
        return result
    webhooks = _call(_api().list, {}, "list the webhooks")
    ours = [hook for hook in _as_list(webhooks) if hook.get("url") == desired.url]
    if ours:
        hook = ours[0]
        if sorted(hook.get("events") or []) != sorted(desired.events):
            body = {"id": hook["id"], "url": desired.url, "events": list(desired.events), "description": DESCRIPTION}
            hook = _call(_api().update, body, "update the webhook")
            result.actions.append("updated")
        else:
            result.actions.append("adopted")
    else:
        body = {"url": desired.url, "events": list(desired.events), "description": DESCRIPTION}
        hook = _call(_api().add, body, "add the webhook (Mandrill checks the URL with a HEAD first)")
        result.actions.append("added")
    result.webhook_id = int(hook["id"])
    webhook_keys.store_current_key(desired.secret_arn, str(hook["auth_key"]))
    if previous is not None and previous.url != desired.url:
        _remove_at(previous.url, result)
    count("MandrillWebhookRegistered")
    logger.info("mandrill webhook registered", extra={"webhook_id": result.webhook_id, "actions": result.actions})
    return result


def unregister(registration: MandrillWebhookRegistration | None) -> MandrillRegistrationResult:
    """Delete: remove the webhook at the registration's URL, as far as can be."""
    result = MandrillRegistrationResult(status="removed")
    if registration is None or _key_is_placeholder():
        return result
    try:
        _remove_at(registration.url, result)
    except WebhookRegistrationFailed as failure:
        cause = failure.__cause__
        if isinstance(cause, MandrillApiError) and not cause.transient:
            logger.warning("mandrill webhook not removed; the stack's deletion goes on", extra={"error": str(failure)})
            return result
        raise
    return result


def _remove_at(url: str, result: MandrillRegistrationResult) -> None:
    for hook in _as_list(_call(_api().list, {}, "list the webhooks")):
        if hook.get("url") == url:
            try:
                _call(_api().delete, {"id": hook["id"]}, "delete the webhook")
            except WebhookRegistrationFailed as failure:
                cause = failure.__cause__
                if isinstance(cause, MandrillApiError) and cause.name == "Unknown_Webhook":
                    continue  # gone already
                raise
            result.actions.append(f"deleted {hook['id']}")


def _api() -> Any:
    return clients.transactional().webhooks


def _as_list(answer: Any) -> list[dict[str, Any]]:
    """The SDK hands an empty list over as the raw response: read it as no webhooks."""
    return [item for item in answer if isinstance(item, dict)] if isinstance(answer, list) else []


def _call(method: Any, body: dict[str, Any], doing: str) -> Any:
    try:
        return method(body)
    except MandrillApiError as error:
        count("MandrillWebhookRegistrationFailed")
        said = f"{error.status} {error.name or ''} {error.message or error.summary}".strip()
        hint = " (check the Mandrill API key)" if error.status in _REFUSED_KEY else ""
        raise WebhookRegistrationFailed(f"Mandrill refused to {doing}: {said}{hint}") from error


def _key_is_placeholder() -> bool:
    key = get_secret(settings.load(settings.MandrillSettings).secret_arn, MandrillCredentials).api_key
    return key.startswith(MAILCHIMP_KEY_PLACEHOLDER_PREFIX)
