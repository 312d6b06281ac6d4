"""The Marketing API's ``/lists/{list_id}/webhooks`` endpoints.

Create and update GET the URL first (Mailchimp's validator) and refuse it unless it answers
200. That GET runs without the state lock, so a slow receiver holds up nothing else; the
audience is looked up again afterwards."""

from __future__ import annotations

from typing import Any

from sandbox.mailchimp.audiences import Audience
from sandbox.mailchimp.problems import MarketingError
from sandbox.mailchimp.state import SandboxState
from sandbox.mailchimp.webhooks import (
    Webhook,
    WebhookChanges,
    new_webhook_id,
    parse_create,
    parse_update,
    refuse_duplicate,
    validate_url,
)


def _audience(state: SandboxState, list_id: str) -> Audience:
    audience = state.audiences.get(list_id)
    if audience is None:
        raise MarketingError(404)
    return audience


def _webhook(audience: Audience, webhook_id: str) -> Webhook:
    webhook = audience.webhooks.get(webhook_id)
    if webhook is None:
        raise MarketingError(404)
    return webhook


def list_webhooks(state: SandboxState, list_id: str) -> dict[str, Any]:
    with state.lock:
        audience = _audience(state, list_id)
        collection = f"{state.base_url}/3.0/lists/{list_id}/webhooks"
        return {
            "webhooks": [webhook.document(state.base_url) for webhook in audience.webhooks.values()],
            "list_id": list_id,
            "total_items": len(audience.webhooks),
            "_links": [
                {"rel": "self", "href": collection, "method": "GET"},
                {"rel": "parent", "href": f"{state.base_url}/3.0/lists/{list_id}", "method": "GET"},
                {"rel": "create", "href": collection, "method": "POST"},
            ],
        }


def get_webhook(state: SandboxState, list_id: str, webhook_id: str) -> dict[str, Any]:
    with state.lock:
        return _webhook(_audience(state, list_id), webhook_id).document(state.base_url)


def create_webhook(state: SandboxState, list_id: str, body: dict[str, Any]) -> dict[str, Any]:
    with state.lock:
        changes = parse_create(body)
        assert changes.url is not None  # parse_create requires it
        refuse_duplicate(_audience(state, list_id).webhooks, changes.url)
        timeout = state.deliveries.settings.timeout_seconds
    validate_url(changes.url, timeout)
    with state.lock:
        audience = _audience(state, list_id)
        refuse_duplicate(audience.webhooks, changes.url)
        webhook = Webhook(
            id=new_webhook_id(),
            list_id=list_id,
            url=changes.url,
            events=changes.events,
            sources=changes.sources,
            secret=changes.secret,
        )
        audience.webhooks[webhook.id] = webhook
        return webhook.document(state.base_url)


def update_webhook(state: SandboxState, list_id: str, webhook_id: str, body: dict[str, Any]) -> dict[str, Any]:
    with state.lock:
        audience = _audience(state, list_id)
        changes = parse_update(body, _webhook(audience, webhook_id))
        if changes.url is not None:
            refuse_duplicate(audience.webhooks, changes.url, except_id=webhook_id)
        timeout = state.deliveries.settings.timeout_seconds
    if changes.url is not None:
        validate_url(changes.url, timeout)
    with state.lock:
        webhook = _webhook(_audience(state, list_id), webhook_id)
        _apply(webhook, changes)
        return webhook.document(state.base_url)


def _apply(webhook: Webhook, changes: WebhookChanges) -> None:
    if changes.url is not None:
        webhook.url = changes.url
    webhook.events = changes.events
    webhook.sources = changes.sources
    if changes.secret_given:
        webhook.secret = changes.secret


def delete_webhook(state: SandboxState, list_id: str, webhook_id: str) -> None:
    with state.lock:
        audience = _audience(state, list_id)
        webhook = _webhook(audience, webhook_id)
        # Deliveries waiting for a retry hold the webhook: they see it disabled and stop.
        webhook.enabled = False
        webhook.disabled_reason = "deleted"
        del audience.webhooks[webhook_id]
