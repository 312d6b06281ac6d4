"""What happens to a message after Mandrill accepts it, as Mandrill's message events tell it:
``send`` and then ``delivered`` for an ordinary address, and for Mandrill's test addresses at
``test.mandrillapp.com`` what their names say (``hard_bounce@``, ``soft_bounce@``, ``spam@``;
``reject@`` is refused at send time and gets a ``reject`` event, as every rejected recipient
does). ``open``, ``click`` and ``unsub`` come from the control API, standing in for the person.

Each event is Mandrill's document: ``event``, ``_id`` (the recipient's message id), ``ts`` and
``msg`` (the message as it stands: ``state``, tags, metadata, opens, clicks, bounce details,
SMTP events...), plus ``url``, ``ip``, ``user_agent`` and ``location`` for opens and clicks.
The recipient entries of the outbox keep the state and the events, for the control API and the
page. Everything here is called with the state lock held.
"""

from __future__ import annotations

import secrets
from typing import Any

TEST_DOMAIN = "test.mandrillapp.com"
REJECT_ADDRESS = f"reject@{TEST_DOMAIN}"
TRACKING_EVENTS = ("open", "click", "unsub")
# A person's address that events show for opens and clicks (TEST-NET-3, documentation only).
_PERSON = {
    "ip": "203.0.113.10",
    "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "location": {
        "country_short": "US",
        "country": "United States",
        "region": "Georgia",
        "city": "Atlanta",
        "postal_code": "30303",
        "timezone": "-05:00",
        "latitude": 33.749,
        "longitude": -84.388,
    },
    "user_agent_parsed": {
        "type": "Email Client",
        "ua_family": "Apple Mail",
        "ua_name": "Apple Mail",
        "ua_version": None,
        "ua_url": "https://www.apple.com/",
        "ua_company": "Apple Inc.",
        "ua_company_url": "https://www.apple.com/",
        "ua_icon": None,
        "os_family": "OS X",
        "os_name": "OS X 10.15",
        "os_url": "https://www.apple.com/macos/",
        "os_company": "Apple Inc.",
        "os_company_url": "https://www.apple.com/",
        "os_icon": None,
        "mobile": False,
    },
}
_HARD_BOUNCE = {
    "bounce_description": "bad_mailbox",
    "bgtools_code": 10,
    "diag": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
}
_SOFT_BOUNCE = {
    "bounce_description": "mailbox_full",
    "bgtools_code": 22,
    "diag": "smtp;552 5.2.2 The email account that you tried to reach is over quota.",
}
# What Mandrill puts on its rejection list after an event, and why.
REJECT_REASONS = {"hard_bounce": "hard-bounce", "spam": "spam", "unsub": "unsub"}


def start_tracking(recipient: dict[str, Any]) -> None:
    """The tracking fields of a fresh outbox recipient."""
    recipient.update(
        state=recipient["status"], events=[], opens=[], clicks=[], smtp_events=[], _version=secrets.token_hex(11)
    )


def _metadata(entry: dict[str, Any], email: str) -> dict[str, Any]:
    metadata = dict(entry["metadata"])
    for item in entry.get("recipient_metadata") or []:
        if isinstance(item, dict) and str(item.get("rcpt", "")).lower() == email.lower():
            metadata.update(item.get("values") or {})
    return metadata


def msg_document(entry: dict[str, Any], recipient: dict[str, Any]) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "ts": entry["ts"],
        "_id": recipient["_id"],
        "state": recipient["state"],
        "subject": recipient["subject"],
        "email": recipient["email"],
        "tags": list(entry["tags"]),
        "metadata": _metadata(entry, recipient["email"]),
        "sender": entry["from_email"],
        "template": entry["template_name"],
        "subaccount": None,
        "opens": list(recipient["opens"]),
        "clicks": list(recipient["clicks"]),
        "smtp_events": list(recipient["smtp_events"]),
        "resends": [],
        "_version": recipient["_version"],
    }
    for name in ("bounce_description", "bgtools_code", "diag"):
        if name in recipient:
            msg[name] = recipient[name]
    return msg


def _event(entry: dict[str, Any], recipient: dict[str, Any], name: str, ts: int, **extra: Any) -> dict[str, Any]:
    """Mandrill's event document; the outbox recipient keeps a short record of it."""
    recipient["events"].append({"event": name, "ts": ts, **({"url": extra["url"]} if "url" in extra else {})})
    return {"event": name, "_id": recipient["_id"], "ts": ts, "msg": msg_document(entry, recipient), **extra}


def events_after_send(entry: dict[str, Any], recipient: dict[str, Any], ts: int) -> list[dict[str, Any]]:
    """The events of one recipient of an accepted call (none for invalid or scheduled ones)."""
    status = recipient["status"]
    if status == "rejected":
        return [_event(entry, recipient, "reject", ts)]
    if status != "sent":
        return []
    address = recipient["email"].lower()
    events = [_event(entry, recipient, "send", ts)]
    relay = {"ts": ts, "type": "sent", "source_ip": "198.51.100.25", "destination_ip": "192.0.2.25", "size": 0}
    if address == f"hard_bounce@{TEST_DOMAIN}":
        recipient.update(state="bounced", **_HARD_BOUNCE)
        recipient["smtp_events"].append({**relay, "type": "bounced", "diag": _HARD_BOUNCE["diag"]})
        events.append(_event(entry, recipient, "hard_bounce", ts))
    elif address == f"soft_bounce@{TEST_DOMAIN}":
        recipient.update(state="soft-bounced", **_SOFT_BOUNCE)
        recipient["smtp_events"].append({**relay, "type": "soft-bounced", "diag": _SOFT_BOUNCE["diag"]})
        events.append(_event(entry, recipient, "soft_bounce", ts))
    else:
        recipient["smtp_events"].append({**relay, "diag": "250 2.0.0 OK"})
        events.append(_event(entry, recipient, "delivered", ts))
        if address == f"spam@{TEST_DOMAIN}":
            events.append(_event(entry, recipient, "spam", ts))
    return events


def tracking_event(
    entry: dict[str, Any], recipient: dict[str, Any], name: str, ts: int, url: str | None
) -> dict[str, Any]:
    """An open, click (of ``url``) or unsubscribe by the recipient."""
    person = {"ip": _PERSON["ip"], "location": _PERSON["location"], "ua": _PERSON["user_agent"]}
    if name == "open":
        recipient["opens"].append({"ts": ts, **person})
    elif name == "click":
        recipient["clicks"].append({"ts": ts, "url": url, **person})
    if name == "unsub":
        return _event(entry, recipient, name, ts)
    extra = {"url": url} if name == "click" else {}
    return _event(entry, recipient, name, ts, **extra, **_PERSON)


def sync_event(action: str, entry: dict[str, Any], ts: int) -> dict[str, Any]:
    """A rejection list change as Mandrill's sync webhooks post it (``type``, not ``event``)."""
    return {"type": "blacklist", "action": action, "reject": dict(entry), "ts": ts}


def first_link(html: str) -> str | None:
    """The first http(s) link of a message, the default target of a click."""
    start = html.find('href="http')
    if start < 0:
        return None
    start += len('href="')
    end = html.find('"', start)
    return html[start:end] if end > start else None
