"""messages/send and messages/send-template: per-recipient results, merge rendering and the
outbox entry each accepted call leaves behind."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sandbox.mailchimp.http_types import dump_json
from sandbox.mailchimp.mandrill_events import REJECT_ADDRESS
from sandbox.mailchimp.merge_language import MERGE_LANGUAGES, render
from sandbox.mailchimp.problems import MandrillError

if TYPE_CHECKING:
    from sandbox.mailchimp.state import SandboxState

_EMAIL_PATTERN = re.compile(r"^[^@\s\"<>(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_EDITABLE_REGION = re.compile(
    r"<(?P<tag>[A-Za-z][A-Za-z0-9]*)(?P<attributes>[^>]*?\bmc:edit=(?P<quote>[\"'])(?P<name>[^\"']+)(?P=quote)[^>]*)>"
    r"(?P<inner>.*?)</(?P=tag)>",
    re.DOTALL,
)


def validation_error(details: dict[str, Any]) -> MandrillError:
    return MandrillError(400, "ValidationError", f"Validation error: {dump_json(details)}")


def is_valid_address(email: str) -> bool:
    return bool(_EMAIL_PATTERN.match(email))


def fill_editable_regions(code: str, template_content: list[dict[str, Any]]) -> str:
    """Put each template_content block into the element marked ``mc:edit="<name>"``."""
    contents = {str(block.get("name")): str(block.get("content", "")) for block in template_content}

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in contents:
            return match.group(0)
        return f"<{match.group('tag')}{match.group('attributes')}>{contents[name]}</{match.group('tag')}>"

    return _EDITABLE_REGION.sub(replace, code)


def _merge_variables(entries: Any, field: str) -> dict[str, Any]:
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise validation_error({"message": {field: "Please enter an array"}})
    return {
        str(entry["name"]): entry.get("content") for entry in entries if isinstance(entry, dict) and "name" in entry
    }


def _scheduled(send_at: Any) -> bool:
    if not send_at:
        return False
    try:
        moment = datetime.fromisoformat(str(send_at)).replace(tzinfo=UTC)
    except ValueError:
        raise validation_error({"send_at": "Please enter a valid date (YYYY-MM-DD HH:MM:SS, UTC)"}) from None
    return moment.timestamp() > time.time()


def send_message(
    state: SandboxState,
    body: dict[str, Any],
    api_version: str,
    template: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Results per recipient (an HTTP 200 even when every recipient is rejected)."""
    message = body.get("message")
    if not isinstance(message, dict):
        raise validation_error({"message": "Please enter an array"})
    recipients = message.get("to")
    if not isinstance(recipients, list) or not all(
        isinstance(recipient, dict) and isinstance(recipient.get("email"), str) for recipient in recipients
    ):
        raise validation_error({"message": {"to": "Please enter an array of recipients, each with an email"}})
    language = message.get("merge_language") or "mailchimp"
    if language not in MERGE_LANGUAGES:
        raise validation_error({"message": {"merge_language": "Must be one of: mailchimp, handlebars"}})
    defaults = template or {}
    from_email = message.get("from_email") or defaults.get("publish_from_email") or ""
    if not is_valid_address(str(from_email)):
        raise validation_error({"message": {"from_email": "Please enter a valid email address"}})
    from_name = message.get("from_name") or defaults.get("publish_from_name") or ""
    subject = message.get("subject") or defaults.get("publish_subject") or ""
    html = message.get("html") or ""
    text = message.get("text") or defaults.get("publish_text") or ""
    if template is not None:
        template_content = body.get("template_content") or []
        html = fill_editable_regions(template.get("publish_code") or "", template_content) or html
    global_variables = _merge_variables(message.get("global_merge_vars"), "global_merge_vars")
    recipient_variables: dict[str, dict[str, Any]] = {}
    for entry in message.get("merge_vars") or []:
        if isinstance(entry, dict) and isinstance(entry.get("rcpt"), str):
            recipient_variables[entry["rcpt"].lower()] = _merge_variables(entry.get("vars"), "merge_vars")
    merge = message.get("merge", True) is not False
    sender_domain = str(from_email).rsplit("@", 1)[-1].lower()
    scheduled = _scheduled(body.get("send_at"))

    results: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    with state.lock:
        for recipient in recipients:
            email = recipient["email"].strip()
            result: dict[str, Any] = {"email": email, "status": "sent", "_id": uuid.uuid4().hex}
            reject = state.rejects.get(email.lower())
            if not is_valid_address(email):
                result["status"] = "invalid"
            elif reject is not None:
                result.update(status="rejected", reject_reason=reject["reason"])
            elif email.lower() == REJECT_ADDRESS:
                result.update(status="rejected", reject_reason="custom")  # Mandrill's test address
            elif sender_domain not in state.verified_domains:
                result.update(status="rejected", reject_reason="unsigned")
            elif scheduled:
                result["status"] = "scheduled"
            variables = {**global_variables, **recipient_variables.get(email.lower(), {})}
            results.append(result)
            deliveries.append(
                {
                    "email": email,
                    "name": recipient.get("name", ""),
                    "type": recipient.get("type", "to"),
                    "status": result["status"],
                    "reject_reason": result.get("reject_reason"),
                    "_id": result["_id"],
                    "merge_vars": variables,
                    "subject": render(subject, language, variables) if merge else subject,
                    "html": render(html, language, variables) if merge else html,
                    "text": render(text, language, variables) if merge else text,
                }
            )
        if deliveries:
            entry = _outbox_entry(body, message, api_version, template, from_email, from_name, language, deliveries)
            state.outbox.append(entry)
            state.mandrill.after_send(entry)
    return results


def _outbox_entry(
    body: dict[str, Any],
    message: dict[str, Any],
    api_version: str,
    template: dict[str, Any] | None,
    from_email: str,
    from_name: str,
    language: str,
    deliveries: list[dict[str, Any]],
) -> dict[str, Any]:
    """What the sandbox remembers of a send. Top-level subject/html/text are the first
    recipient's rendering (the common single-recipient case); every recipient's is in
    ``recipients``."""
    first = deliveries[0]
    now = time.time()
    return {
        "_id": first["_id"],
        "ts": int(now),
        "sent_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "api_version": api_version,
        "api_call": "messages/send-template" if template is not None else "messages/send",
        "from_email": from_email,
        "from_name": from_name,
        "to": [{"email": d["email"], "name": d["name"], "type": d["type"]} for d in deliveries],
        "subject": first["subject"],
        "html": first["html"],
        "text": first["text"],
        "template_name": template["name"] if template is not None else None,
        "template_content": body.get("template_content") if template is not None else None,
        "merge_language": language,
        "global_merge_vars": message.get("global_merge_vars") or [],
        "merge_vars": message.get("merge_vars") or [],
        "tags": message.get("tags") or [],
        "metadata": message.get("metadata") or {},
        "recipient_metadata": message.get("recipient_metadata") or [],
        "headers": message.get("headers") or {},
        "send_at": body.get("send_at"),
        "status": first["status"],
        "recipients": deliveries,
    }
