"""The page at ``/``: audiences with member counts by status, the newest members with buttons
that act as the subscriber or an admin (confirm, unsubscribe, clean, change address, edit
profile: the control API's member actions, which fire the audience webhooks), the webhooks
and their recent deliveries, the Mandrill webhooks, and the outbox with every email rendered
(in a sandboxed iframe, so a message's HTML cannot touch the page) and each recipient's events,
with buttons that open, click or unsubscribe as the person."""

from __future__ import annotations

from html import escape
from typing import Any

from sandbox.mailchimp.audiences import Audience
from sandbox.mailchimp.http_types import HTML_CONTENT_TYPE, Response
from sandbox.mailchimp.state import SandboxState
from sandbox.mailchimp.traffic import Traffic
from sandbox.mailchimp.web_mandrill import SCRIPT as MANDRILL_SCRIPT
from sandbox.mailchimp.web_mandrill import mandrill_webhooks_section, recipients_section
from sandbox.mailchimp.web_oauth import OAUTH_SCRIPT, oauth_section
from sandbox.mailchimp.web_webhooks import deliveries_section, webhooks_section

NEWEST_MEMBERS = 10
OUTBOX_SHOWN = 50
_NO_EMAIL = "<p class='muted'>No email yet.</p>"
_COUNTED_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #241c15; background: #fbfaf7; }
h1 { margin-top: 0; } h2 { border-bottom: 2px solid #ffe01b; padding-bottom: .2rem; }
table { border-collapse: collapse; margin-bottom: 1.5rem; background: white; }
th, td { border: 1px solid #ddd; padding: .3rem .6rem; text-align: left; font-size: .9rem; }
th { background: #f3f1ea; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
.message { border: 1px solid #ddd; background: white; padding: .8rem; margin-bottom: 1rem; }
.message iframe { width: 100%; height: 14rem; border: 1px solid #eee; }
.status-rejected, .status-invalid, .status-bounced, .status-soft-bounced { color: #b00020; font-weight: bold; }
.muted { color: #777; } code { background: #f3f1ea; padding: 0 .2rem; }
td.actions details { display: inline-block; margin-left: .3rem; } td.actions input { width: 10rem; }
button { cursor: pointer; }
"""

# The member buttons post to the control API as the person chosen above the table, then reload
# the page (the webhook deliveries happen in the background; reload again to see them).
_SCRIPT = """
const settings = document.getElementById('action-settings');
const result = document.getElementById('action-result');
const last = sessionStorage.getItem('sandbox-last-action');
if (last) { result.textContent = last; sessionStorage.removeItem('sandbox-last-action'); }
document.addEventListener('click', async (event) => {
  const button = event.target.closest('button[data-action]');
  if (!button) return;
  const row = button.closest('tr[data-email]');
  const action = button.dataset.action;
  const body = {action, as: settings.querySelector('input[name=as]:checked').value};
  if (action === 'unsubscribe') body.reason = settings.elements.unsubscribe_reason.value;
  if (action === 'clean') body.reason = settings.elements.clean_reason.value;
  if (action === 'change_email') body.new_email = row.querySelector('input[name=new_email]').value;
  if (action === 'update_profile') {
    body.merge_fields = {};
    for (const input of row.querySelectorAll('input[data-merge]')) body.merge_fields[input.dataset.merge] = input.value;
  }
  const member = `${encodeURIComponent(row.dataset.listId)}/${encodeURIComponent(row.dataset.email)}`;
  const response = await fetch(`/_sandbox/members/${member}/actions`, {
    method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  const answer = await response.json();
  if (response.ok) {
    sessionStorage.setItem('sandbox-last-action',
      `${action} ${row.dataset.email} as ${body.as}: ${answer.webhooks_queued} webhook deliveries queued`);
    location.reload();
  } else {
    result.textContent = `${action} ${row.dataset.email}: ${answer.error}`;
    result.className = 'status-rejected';
  }
});
"""

_ACTION_SETTINGS = """<form id="action-settings" data-testid="action-settings" onsubmit="return false">
Act as <label><input type="radio" name="as" value="user" checked> the subscriber</label>
<label><input type="radio" name="as" value="admin"> an admin</label>
· unsubscribe reason <select name="unsubscribe_reason"><option>manual</option><option>abuse</option></select>
· clean reason <select name="clean_reason"><option>hard</option><option>abuse</option></select>
</form>
<p id="action-result" data-testid="action-result" class="muted"></p>"""


def render_page(state: SandboxState, traffic: Traffic) -> Response:
    with state.lock:
        audiences = list(state.audiences.values())
        audience_rows = [_audience_row(audience) for audience in audiences]
        newest = [_newest_members(audience) for audience in audiences]
        messages = list(state.outbox)[-OUTBOX_SHOWN:][::-1]
        webhooks = webhooks_section(state)
        mandrill_webhooks = mandrill_webhooks_section(state)
        outbox = "".join(_message(message) for message in messages) or _NO_EMAIL
    deliveries = deliveries_section(state.deliveries.snapshot())
    stats = traffic.snapshot()
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mailchimp Sandbox</title><style>{_STYLE}</style></head>
<body>
<h1>Mailchimp Sandbox</h1>
<p class="muted">Marketing API at <code>{escape(state.base_url)}/3.0</code>, Transactional at
<code>{escape(state.base_url)}/api/1.3</code>, control API at <code>{escape(state.base_url)}/_sandbox</code>.
{stats["requests"]} API requests over {stats["connections_opened"]} connections since the last reset.</p>
<h2>Audiences</h2>
<table data-testid="audiences"><thead><tr><th>Audience</th><th>List id</th>
{"".join(f"<th>{status}</th>" for status in _COUNTED_STATUSES)}<th>total</th></tr></thead>
<tbody>{"".join(audience_rows)}</tbody></table>
<h2>Newest members</h2>
{_ACTION_SETTINGS}
{"".join(newest)}
<h2>Webhooks</h2>
{webhooks}
<h2>Webhook deliveries</h2>
{deliveries}
<h2>Mandrill webhooks</h2>
{mandrill_webhooks}
<h2>Outbox ({len(state.outbox)})</h2>
<div data-testid="outbox">{outbox}</div>
<h2>OAuth apps and tokens</h2>
{oauth_section(state.oauth)}
<script>{_SCRIPT}{MANDRILL_SCRIPT}{OAUTH_SCRIPT}</script>
</body></html>"""
    return Response(status=200, body=body.encode(), content_type=HTML_CONTENT_TYPE)


def _audience_row(audience: Audience) -> str:
    counts = audience.members.counts_by_status()
    cells = "".join(f'<td class="number" data-status="{s}">{counts[s]}</td>' for s in _COUNTED_STATUSES)
    total = sum(counts.values()) - counts["archived"]
    return (
        f'<tr data-list-id="{escape(audience.id)}"><td>{escape(audience.name)}</td>'
        f"<td><code>{escape(audience.id)}</code></td>{cells}<td class='number'>{total}</td></tr>"
    )


def _newest_members(audience: Audience) -> str:
    slots = audience.members.newest(NEWEST_MEMBERS)
    if not slots:
        return f"<h3>{escape(audience.name)}</h3><p class='muted'>No members.</p>"
    rows = []
    for slot in slots:
        member = audience.members.document(slot)
        tags = ", ".join(tag["name"] for tag in member["tags"])
        rows.append(
            f'<tr data-list-id="{escape(audience.id)}" data-email="{escape(member["email_address"])}">'
            f"<td>{escape(member['email_address'])}</td><td>{escape(member['full_name'])}</td>"
            f"<td data-field='status'>{escape(member['status'])}</td><td>{escape(member['last_changed'])}</td>"
            f"<td>{escape(tags)}</td>{_member_actions(audience, member)}</tr>"
        )
    return (
        f"<h3>{escape(audience.name)}</h3>"
        f'<table data-testid="members-{escape(audience.id)}"><thead><tr><th>Email</th><th>Name</th>'
        f"<th>Status</th><th>Last changed</th><th>Tags</th><th>Act on the member</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _member_actions(audience: Audience, member: dict[str, Any]) -> str:
    """The buttons that fit the member's status (the control API refuses the others)."""
    status = member["status"]
    buttons = []
    if status == "pending":
        buttons.append('<button data-action="confirm">Confirm</button>')
    if status == "subscribed":
        buttons.append('<button data-action="unsubscribe">Unsubscribe</button>')
    if status not in ("cleaned", "archived"):
        buttons.append('<button data-action="clean">Clean</button>')
    if status != "archived":
        inputs = "".join(
            f'<input data-merge="{escape(field["tag"])}" placeholder="{escape(field["tag"])}" '
            f'value="{escape(str(member["merge_fields"].get(field["tag"], "")))}">'
            for field in audience.merge_fields
            if not isinstance(member["merge_fields"].get(field["tag"]), dict)
        )
        buttons.append(
            '<details><summary>Change address</summary><input name="new_email" type="email" '
            'placeholder="new address"><button data-action="change_email">Save address</button></details>'
            f'<details><summary>Edit profile</summary>{inputs}<button data-action="update_profile">'
            "Save profile</button></details>"
        )
    return f'<td class="actions">{"".join(buttons)}</td>'


def _message(message: dict[str, Any]) -> str:
    """Called with the state lock held (the recipients' events change under it)."""
    template = f" · template <code>{escape(message['template_name'])}</code>" if message["template_name"] else ""
    tags = f" · tags {escape(', '.join(map(str, message['tags'])))}" if message["tags"] else ""
    sender = f"{escape(message['from_name'])} &lt;{escape(message['from_email'])}&gt;"
    return f"""<div class="message" data-testid="message">
<div><strong data-testid="subject">{escape(message["subject"])}</strong></div>
<div class="muted">from {sender} · {escape(message["sent_at"])}{template}{tags}</div>
{recipients_section(message)}
<iframe sandbox="" title="{escape(message["subject"])}" srcdoc="{escape(message["html"], quote=True)}"></iframe>
</div>"""
