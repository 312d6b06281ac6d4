"""The page at ``/``: audiences with member counts by status, the newest members, and the
outbox with every email rendered (in a sandboxed iframe, so a message's HTML cannot touch
the page)."""

from __future__ import annotations

from html import escape
from typing import Any

from sandbox.mailchimp.audiences import Audience
from sandbox.mailchimp.http_types import HTML_CONTENT_TYPE, Response
from sandbox.mailchimp.state import SandboxState
from sandbox.mailchimp.traffic import Traffic

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
.status-rejected, .status-invalid { color: #b00020; font-weight: bold; }
.muted { color: #777; } code { background: #f3f1ea; padding: 0 .2rem; }
"""


def render_page(state: SandboxState, traffic: Traffic) -> Response:
    with state.lock:
        audiences = list(state.audiences.values())
        audience_rows = [_audience_row(audience) for audience in audiences]
        newest = [_newest_members(audience) for audience in audiences]
        messages = list(state.outbox)[-OUTBOX_SHOWN:][::-1]
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
{"".join(newest)}
<h2>Outbox ({len(state.outbox)})</h2>
<div data-testid="outbox">{"".join(_message(message) for message in messages) or _NO_EMAIL}</div>
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
            f"<tr><td>{escape(member['email_address'])}</td><td>{escape(member['full_name'])}</td>"
            f"<td>{escape(member['status'])}</td><td>{escape(member['last_changed'])}</td>"
            f"<td>{escape(tags)}</td></tr>"
        )
    return (
        f"<h3>{escape(audience.name)}</h3>"
        f'<table data-testid="members-{escape(audience.id)}"><thead><tr><th>Email</th><th>Name</th>'
        f"<th>Status</th><th>Last changed</th><th>Tags</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _message(message: dict[str, Any]) -> str:
    recipients = ", ".join(
        f'<span class="status-{escape(r["status"])}">{escape(r["email"])} ({escape(r["status"])}'
        f"{': ' + escape(r['reject_reason']) if r.get('reject_reason') else ''})</span>"
        for r in message["recipients"]
    )
    template = f" · template <code>{escape(message['template_name'])}</code>" if message["template_name"] else ""
    tags = f" · tags {escape(', '.join(map(str, message['tags'])))}" if message["tags"] else ""
    sender = f"{escape(message['from_name'])} &lt;{escape(message['from_email'])}&gt;"
    return f"""<div class="message" data-testid="message">
<div><strong data-testid="subject">{escape(message["subject"])}</strong></div>
<div class="muted">from {sender} · {escape(message["sent_at"])}{template}{tags}</div>
<div>to {recipients}</div>
<iframe sandbox="" title="{escape(message["subject"])}" srcdoc="{escape(message["html"], quote=True)}"></iframe>
</div>"""
