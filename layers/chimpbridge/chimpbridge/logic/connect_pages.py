"""The HTML pages the operator's browser ends on after connecting (or failing to): plain,
escaped, no script, never a trace or anything Mailchimp said."""

from __future__ import annotations

from html import escape

TITLES = {
    "connected": "Connected to Mailchimp",
    "denied": "Not connected: access was not allowed",
    "forged": "Not connected: invalid link",
    "expired": "Not connected: the link expired",
    "foreign": "Not connected: started in another browser",
    "used": "Not connected: link already used",
    "replayed": "Not connected: already completed",
    "code": "Not connected: Mailchimp refused the authorization",
    "token": "Not connected: Mailchimp refused the authorization",
    "client": "Not connected: the OAuth app is misconfigured",
    "not-configured": "Not connected: the OAuth app is not set up",
    "unavailable": "Not connected: Mailchimp is unavailable",
}


def page(kind: str, message: str) -> str:
    title = TITLES.get(kind, "Not connected")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>{escape(title)}</title></head>
<body><main data-testid="connect-result" data-result="{escape(kind)}">
<h1>{escape(title)}</h1>
<p>{escape(message)}</p>
</main></body></html>"""
