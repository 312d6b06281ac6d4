"""Turning a queued :class:`EmailMessage` into a Mandrill call, per the hook's :class:`EmailFlow`.

Bundle templates are files next to this package (``chimpbridge/templates/<name>.html`` and
``<name>.txt``), rendered by Mandrill with ``merge_language: handlebars``. A language-specific
pair (``welcome.de.html``) is used when the person's locale asks for it; only a well-formed
locale (``de``, ``de-AT``, ``pt_BR``, ``zh-Hant-TW``) is looked at, and only for its language,
so a locale can never name another file, and the templates read stay few. Mandrill stored
templates go through ``messages/send-template`` with the same merge variables.

Merge variables (lowercase, the same names in both merge languages): ``first_name``,
``last_name``, ``name``, ``email``, ``locale``, ``hook``, ``transient_payload`` (an object, for
handlebars: only the members the flow's ``payload_keys`` allow, logic/email_payload.py) per
recipient, and ``product_name`` (the From name) globally.

The values come from the person (Kratos traits are whatever they typed). Handlebars escapes
``{{name}}`` for HTML itself; the mailchimp merge language inserts ``*|NAME|*`` as it is, so
for it every value is HTML-escaped here: a name like ``<a href=...>`` shows as text, never as a
link. (In a mailchimp-language subject or text part the escaped form shows; use handlebars for
templates that need the raw value there.)
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from chimpbridge.errors import ConfigurationError
from chimpbridge.logic import email_payload
from chimpbridge.models.email import EmailMessage
from chimpbridge.settings import EmailFlow, EmailSettings

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
# A BCP 47-like locale: a 2-3 letter language, then subtags (script, region). Only the
# language picks a template.
_LOCALE = re.compile(r"([a-z]{2,3})(?:-[a-z0-9]{2,8})*")


@dataclass(frozen=True)
class BundleTemplate:
    html: str
    text: str


@functools.lru_cache(maxsize=64)
def bundle_template(name: str, language: str | None = None) -> BundleTemplate:
    """``<name>.<language>.html/.txt`` if both exist, else ``<name>.html/.txt``. ``name`` is
    checked by the settings and ``language`` by :func:`template_language`."""
    if language:
        html_file, text_file = TEMPLATES_DIR / f"{name}.{language}.html", TEMPLATES_DIR / f"{name}.{language}.txt"
        if html_file.is_file() and text_file.is_file():
            return BundleTemplate(html_file.read_text(encoding="utf-8"), text_file.read_text(encoding="utf-8"))
        return bundle_template(name)  # one copy of the default, however many languages ask
    html_file, text_file = TEMPLATES_DIR / f"{name}.html", TEMPLATES_DIR / f"{name}.txt"
    if html_file.is_file() and text_file.is_file():
        return BundleTemplate(html_file.read_text(encoding="utf-8"), text_file.read_text(encoding="utf-8"))
    raise ConfigurationError(f"EMAIL_FLOWS names the template {name!r}, but {name}.html/.txt are not in the layer")


def template_language(locale: str | None) -> str | None:
    """The language of a well-formed locale (``de-AT`` -> ``de``); None for anything else."""
    match = _LOCALE.fullmatch(locale.replace("_", "-").lower()) if locale else None
    return match.group(1) if match else None


@dataclass(frozen=True)
class MandrillSend:
    """One Mandrill call. ``body()`` builds a fresh dict every time: the SDK writes the API
    key into the dict it is given, so a body is never reused, kept or logged."""

    api_call: Literal["messages/send", "messages/send-template"]
    template_name: str | None
    message: dict[str, Any]
    dropped_payload: int = 0  # transient_payload members the flow does not allow, left out

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": _deep_copy(self.message)}
        if self.template_name is not None:
            body["template_name"] = self.template_name
            body["template_content"] = []
        return body


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value


def _variables(pairs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "content": content} for name, content in pairs.items()]


def _escaped(value: Any) -> Any:
    """``value`` with every string in it HTML-escaped (for a merge language that does not)."""
    if isinstance(value, str):
        return html.escape(value)
    if isinstance(value, dict):
        return {key: _escaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    return value


def build(message: EmailMessage, flow: EmailFlow, sender: EmailSettings) -> MandrillSend:
    recipient = message.recipient
    name = recipient.name
    payload = email_payload.allowed(message.transient_payload, flow.payload_keys)
    person = {
        "first_name": name.first_name,
        "last_name": name.last or "",
        "name": name.display,
        "email": recipient.email,
        "locale": recipient.locale or "",
        "hook": message.hook,
        "transient_payload": payload.values,
    }
    shared = {"product_name": sender.from_name}
    if flow.merge_language == "mailchimp":
        person, shared = _escaped(person), _escaped(shared)
    mandrill_message: dict[str, Any] = {
        "from_email": sender.from_email,
        "to": [{"email": recipient.email, "name": name.display, "type": "to"}],
        "merge": True,
        "merge_language": flow.merge_language,
        "global_merge_vars": _variables(shared),
        "merge_vars": [{"rcpt": recipient.email, "vars": _variables(person)}],
        "tags": list(dict.fromkeys([message.hook, *flow.tags])),
        # Mandrill keeps metadata with the message: search and webhooks find it by these.
        "metadata": {
            "identity_id": str(message.identity_id),
            "hook": message.hook,
            "idempotency_key": message.idempotency_key,
        },
        "preserve_recipients": False,
    }
    if sender.from_name:
        mandrill_message["from_name"] = sender.from_name
    if sender.reply_to:
        mandrill_message["headers"] = {"Reply-To": sender.reply_to}
    if flow.subject:
        mandrill_message["subject"] = flow.subject
    if flow.template is not None:
        template = bundle_template(flow.template, template_language(recipient.locale))
        mandrill_message["html"] = template.html
        mandrill_message["text"] = template.text
        return MandrillSend("messages/send", None, mandrill_message, payload.dropped)
    return MandrillSend("messages/send-template", flow.mandrill_template, mandrill_message, payload.dropped)
