"""Turning a queued :class:`EmailMessage` into a Mandrill call, per the hook's :class:`EmailFlow`.

Bundle templates are files next to this package (``chimpbridge/templates/<name>.html`` and
``<name>.txt``), rendered by Mandrill with ``merge_language: handlebars``. A language-specific
pair (``welcome.de.html``) is used when the person's locale asks for it. Mandrill stored
templates go through ``messages/send-template`` with the same merge variables.

Merge variables (lowercase, the same names in both merge languages): ``first_name``,
``last_name``, ``name``, ``email``, ``locale``, ``hook``, ``transient_payload`` (an object, for
handlebars) per recipient, and ``product_name`` (the From name) globally.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from chimpbridge.errors import ConfigurationError
from chimpbridge.models.email import EmailMessage
from chimpbridge.settings import EmailFlow, EmailSettings

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@dataclass(frozen=True)
class BundleTemplate:
    html: str
    text: str


@functools.cache
def bundle_template(name: str, language: str | None = None) -> BundleTemplate:
    """``<name>.<language>.html/.txt`` if both exist, else ``<name>.html/.txt``."""
    for stem in ([f"{name}.{language}"] if language else []) + [name]:
        html, text = TEMPLATES_DIR / f"{stem}.html", TEMPLATES_DIR / f"{stem}.txt"
        if html.is_file() and text.is_file():
            return BundleTemplate(html.read_text(encoding="utf-8"), text.read_text(encoding="utf-8"))
    raise ConfigurationError(f"EMAIL_FLOWS names the template {name!r}, but {name}.html/.txt are not in the layer")


@dataclass(frozen=True)
class MandrillSend:
    """One Mandrill call. ``body()`` builds a fresh dict every time: the SDK writes the API
    key into the dict it is given, so a body is never reused, kept or logged."""

    api_call: Literal["messages/send", "messages/send-template"]
    template_name: str | None
    message: dict[str, Any]

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


def _language(locale: str | None) -> str | None:
    return locale.replace("_", "-").split("-")[0].lower() if locale else None


def build(message: EmailMessage, flow: EmailFlow, sender: EmailSettings) -> MandrillSend:
    recipient = message.recipient
    name = recipient.name
    person = {
        "first_name": name.first_name,
        "last_name": name.last or "",
        "name": name.display,
        "email": recipient.email,
        "locale": recipient.locale or "",
        "hook": message.hook,
        "transient_payload": message.transient_payload,
    }
    mandrill_message: dict[str, Any] = {
        "from_email": sender.from_email,
        "to": [{"email": recipient.email, "name": name.display, "type": "to"}],
        "merge": True,
        "merge_language": flow.merge_language,
        "global_merge_vars": _variables({"product_name": sender.from_name}),
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
        template = bundle_template(flow.template, _language(recipient.locale))
        mandrill_message["html"] = template.html
        mandrill_message["text"] = template.text
        return MandrillSend("messages/send", None, mandrill_message)
    return MandrillSend("messages/send-template", flow.mandrill_template, mandrill_message)
