"""The page's Mandrill parts: the Mandrill webhooks with their counters and a button that posts
Mandrill's test delivery, and for each outbox recipient its state, its events and buttons that
open the message, click a link or unsubscribe as the person (the control API's message events,
which go to the Mandrill webhooks)."""

from __future__ import annotations

from html import escape
from typing import Any

from sandbox.mailchimp.mandrill_events import first_link
from sandbox.mailchimp.state import SandboxState

_NO_WEBHOOKS = "<p class='muted'>No Mandrill webhooks. Add one with <code>POST /api/1.3/webhooks/add.json</code>.</p>"

# The buttons post to the control API, then reload the page (batches go out in the background).
SCRIPT = """
document.addEventListener('click', async (event) => {
  const button = event.target.closest('button[data-mandrill-event], button[data-mandrill-test]');
  if (!button) return;
  const result = document.getElementById('action-result');
  let path, body = {};
  if (button.dataset.mandrillTest) {
    path = `/_sandbox/mandrill-webhooks/${button.dataset.mandrillTest}/test`;
  } else {
    const row = button.closest('[data-message-id]');
    path = `/_sandbox/outbox/${encodeURIComponent(row.dataset.messageId)}/events`;
    body = {event: button.dataset.mandrillEvent};
    const url = row.querySelector('input[name=url]');
    if (body.event === 'click' && url && url.value) body.url = url.value;
  }
  const response = await fetch(path, {
    method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  const answer = await response.json();
  if (response.ok) {
    sessionStorage.setItem('sandbox-last-action', button.dataset.mandrillTest
      ? `test delivery queued for Mandrill webhook ${button.dataset.mandrillTest}`
      : `${body.event}: ${answer.webhooks_queued} events queued for Mandrill webhooks`);
    location.reload();
  } else {
    result.textContent = answer.error;
    result.className = 'status-rejected';
  }
});
"""


def mandrill_webhooks_section(state: SandboxState) -> str:
    """Called with the state lock held."""
    rows = []
    for webhook in state.mandrill.webhooks.values():
        last_sent = "" if webhook.last_sent_at is None else webhook.document()["last_sent_at"]
        rows.append(
            f'<tr data-mandrill-webhook-id="{webhook.id}"><td class="number">{webhook.id}</td>'
            f"<td>{escape(webhook.url)}</td><td>{escape(', '.join(webhook.events) or 'none')}</td>"
            f"<td>{escape(webhook.description)}</td><td><code>{escape(webhook.auth_key)}</code></td>"
            f"<td class='number' data-field='batches_sent'>{webhook.batches_sent}</td>"
            f"<td class='number' data-field='events_sent'>{webhook.events_sent}</td>"
            f"<td>{escape(last_sent)}</td><td class='status-rejected'>{escape(webhook.last_error or '')}</td>"
            f'<td><button data-mandrill-test="{webhook.id}">Send test</button></td></tr>'
        )
    if not rows:
        return _NO_WEBHOOKS
    return (
        '<table data-testid="mandrill-webhooks"><thead><tr><th>Id</th><th>URL</th><th>Events</th>'
        "<th>Description</th><th>Auth key</th><th>Batches</th><th>Events sent</th><th>Last sent (UTC)</th>"
        f"<th>Last error</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def recipients_section(message: dict[str, Any]) -> str:
    """One row per recipient: address, state, events so far and the person's buttons."""
    rows = []
    for recipient in message["recipients"]:
        state = recipient.get("state", recipient["status"])
        reason = f": {recipient['reject_reason']}" if recipient.get("reject_reason") else ""
        events = ", ".join(
            event["event"] + (f" {event['url']}" if event.get("url") else "") for event in recipient.get("events", [])
        )
        buttons = ""
        if state == "sent":
            link = first_link(recipient["html"]) or ""
            buttons = (
                '<button data-mandrill-event="open">Open</button>'
                f'<input name="url" placeholder="link" value="{escape(link)}">'
                '<button data-mandrill-event="click">Click</button>'
                '<button data-mandrill-event="unsub">Unsubscribe</button>'
            )
        rows.append(
            f'<tr data-message-id="{escape(recipient["_id"])}" data-email="{escape(recipient["email"])}">'
            f'<td>{escape(recipient["email"])}</td><td class="status-{escape(state)}" data-field="state">'
            f"{escape(state + reason)}</td><td data-field='events'>{escape(events)}</td>"
            f'<td class="actions">{buttons}</td></tr>'
        )
    return (
        '<table data-testid="recipients"><thead><tr><th>To</th><th>State</th><th>Events</th><th>Act as the person</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
