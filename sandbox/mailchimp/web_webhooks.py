"""The page's webhook parts: each audience's webhooks with the sandbox's state (enabled,
signed) and the newest deliveries with their attempts and answers."""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Any

from sandbox.mailchimp.state import SandboxState

DELIVERIES_SHOWN = 50
_NO_WEBHOOKS = "<p class='muted'>No webhooks. Create one with <code>POST /3.0/lists/{list_id}/webhooks</code>.</p>"
_NO_DELIVERIES = "<p class='muted'>No deliveries yet.</p>"


def _on(flags: dict[str, bool]) -> str:
    return ", ".join(name for name, on in flags.items() if on) or "none"


def webhooks_section(state: SandboxState) -> str:
    """Called with the state lock held."""
    rows = []
    for audience in state.audiences.values():
        for webhook in audience.webhooks.values():
            condition = "enabled" if webhook.enabled else f"disabled: {webhook.disabled_reason}"
            rows.append(
                f'<tr data-webhook-id="{escape(webhook.id)}"><td><code>{escape(audience.id)}</code></td>'
                f"<td>{escape(webhook.url)}</td><td>{escape(_on(webhook.events))}</td>"
                f"<td>{escape(_on(webhook.sources))}</td>"
                f'<td class="{"" if webhook.enabled else "status-rejected"}">{escape(condition)}</td>'
                f"<td>{'yes' if webhook.secret is not None else 'no'}</td></tr>"
            )
    if not rows:
        return _NO_WEBHOOKS
    return (
        '<table data-testid="webhooks"><thead><tr><th>List id</th><th>URL</th><th>Events</th><th>Sources</th>'
        f"<th>State</th><th>Signed</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _delivery_row(delivery: dict[str, Any]) -> str:
    answered = "" if delivery["answered"] is None else str(delivery["answered"])
    failed = delivery["status"] in ("failed", "gone", "retrying")
    kind = delivery.get("kind", "audience")
    shown = delivery["type"]
    if kind == "mandrill":  # a batch: what it carries
        counts = Counter(delivery["events"])
        carried = ", ".join(name if count == 1 else f"{name} x{count}" for name, count in counts.items())
        shown = f"Mandrill {delivery['type']}: {carried or 'no events'}"
    return (
        f'<tr data-kind="{escape(kind)}" data-type="{escape(delivery["type"])}" '
        f'data-status="{escape(delivery["status"])}">'
        f"<td>{escape(delivery['fired_at'])}</td><td>{escape(shown)}</td>"
        f"<td>{escape(delivery['source'])}</td><td>{escape(delivery['url'])}</td>"
        f'<td class="{"status-rejected" if failed else ""}">{escape(delivery["status"])}</td>'
        f"<td class='number'>{delivery['attempts']}</td><td class='number'>{escape(answered)}</td>"
        f"<td>{escape(delivery['error'])}</td></tr>"
    )


def deliveries_section(deliveries: list[dict[str, Any]]) -> str:
    """The newest deliveries first."""
    shown = deliveries[-DELIVERIES_SHOWN:][::-1]
    if not shown:
        return f'<div data-testid="deliveries">{_NO_DELIVERIES}</div>'
    return (
        '<table data-testid="deliveries"><thead><tr><th>Fired at (UTC)</th><th>Type</th><th>Source</th><th>URL</th>'
        "<th>Status</th><th>Attempts</th><th>Answered</th><th>Error</th></tr></thead>"
        f"<tbody>{''.join(_delivery_row(delivery) for delivery in shown)}</tbody></table>"
    )
