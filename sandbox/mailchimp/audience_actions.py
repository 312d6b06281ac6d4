"""What happens in Mailchimp outside the API, played by the control API: a subscriber (``as:
user``) or an account admin (``as: admin``) confirms a pending signup, unsubscribes, is
cleaned, changes address or edits the profile; and a campaign is sent. Each change follows
the same member rules as the API and fires the audience's webhooks with that source."""

from __future__ import annotations

import time
from typing import Any

from sandbox.mailchimp import member_api
from sandbox.mailchimp.problems import MarketingError
from sandbox.mailchimp.state import SandboxState
from sandbox.mailchimp.webhook_payloads import ChangeDetails, campaign_event, fired_at

ACTIONS = ("confirm", "unsubscribe", "clean", "change_email", "update_profile")
ACTORS = ("user", "admin")
UNSUBSCRIBE_REASONS = ("manual", "abuse")
CLEAN_REASONS = ("hard", "abuse")
CAMPAIGN_STATUSES = ("sent", "canceled")
# The address the sandbox records for a person acting in their browser.
DEFAULT_IP = "127.0.0.1"


class ActionRefused(Exception):
    """The action does not apply to this member (or the request is malformed)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def _choice(body: dict[str, Any], name: str, choices: tuple[str, ...], default: str | None = None) -> str:
    value = body.get(name, default)
    if value not in choices:
        raise ActionRefused(400, f"{name} must be one of {list(choices)}")
    return str(value)


def _require_status(member: dict[str, Any], action: str, allowed: tuple[str, ...]) -> None:
    if member["status"] not in allowed:
        raise ActionRefused(
            409, f"cannot {action} a member whose status is {member['status']!r} (needs one of {list(allowed)})"
        )


def _update_for(action: str, member: dict[str, Any], body: dict[str, Any]) -> tuple[dict[str, Any], ChangeDetails]:
    """The member update an action amounts to, and the details its webhook carries."""
    campaign_id = str(body.get("campaign_id") or "")
    if action == "confirm":
        _require_status(member, action, ("pending",))
        return {"status": "subscribed", "ip_opt": str(body.get("ip") or DEFAULT_IP)}, ChangeDetails()
    if action == "unsubscribe":
        reason = _choice(body, "reason", UNSUBSCRIBE_REASONS, "manual")
        _require_status(member, action, ("subscribed",))
        return {"status": "unsubscribed"}, ChangeDetails(reason=reason, campaign_id=campaign_id)
    if action == "clean":
        reason = _choice(body, "reason", CLEAN_REASONS, "hard")
        _require_status(member, action, ("subscribed", "pending", "unsubscribed", "transactional"))
        return {"status": "cleaned"}, ChangeDetails(reason=reason, campaign_id=campaign_id)
    if action == "change_email":
        if not isinstance(body.get("new_email"), str):
            raise ActionRefused(400, "change_email needs new_email")
        _require_status(member, action, ("subscribed", "pending", "unsubscribed", "transactional"))
        return {"email_address": body["new_email"]}, ChangeDetails()
    merge_fields = body.get("merge_fields")
    interests = body.get("interests")
    if not isinstance(merge_fields, dict) and not isinstance(interests, dict):
        raise ActionRefused(400, "update_profile needs merge_fields and/or interests (objects)")
    _require_status(member, action, ("subscribed", "pending", "unsubscribed", "transactional"))
    update: dict[str, Any] = {}
    if isinstance(merge_fields, dict):
        update["merge_fields"] = merge_fields
    if isinstance(interests, dict):
        update["interests"] = interests
    return update, ChangeDetails()


def act_on_member(state: SandboxState, list_id: str, reference: str, body: dict[str, Any]) -> dict[str, Any]:
    """``{"action": ..., "as": "user" | "admin", ...}``: apply it, fire the webhooks; answers
    the member document and how many deliveries were queued."""
    action = _choice(body, "action", ACTIONS)
    actor = _choice(body, "as", ACTORS, "user")
    with state.lock:
        audience = state.audiences.get(list_id)
        if audience is None:
            raise ActionRefused(404, f"no audience {list_id}")
        try:
            member = member_api.get_member(audience, reference)
        except MarketingError:
            raise ActionRefused(404, f"no member {reference} in audience {list_id}") from None
        update, details = _update_for(action, member, body)
        # The API's rules apply: a new address is checked (fake, malformed, taken), required
        # merge fields stay required.
        document = member_api.patch_member(audience, member["id"], update, state.now(), False)
        queued = state.publish_member_changes(actor, details)
        return {"member": document, "webhooks_queued": queued}


def send_campaign(state: SandboxState, body: dict[str, Any]) -> dict[str, Any]:
    """``{"list_id", "subject", "status": "sent" | "canceled", "reason", "campaign_id"}``: the
    campaign event, which Mailchimp delivers whatever a webhook's sources are."""
    list_id = str(body.get("list_id") or "")
    status = _choice(body, "status", CAMPAIGN_STATUSES, "sent")
    with state.lock:
        audience = state.audiences.get(list_id)
        if audience is None:
            raise ActionRefused(404, f"no audience {list_id!r}")
        campaign_id = str(body.get("campaign_id") or f"{state.rng.getrandbits(40):010x}")
        subject, reason = str(body.get("subject") or ""), str(body.get("reason") or "")
        event = campaign_event(list_id, campaign_id, subject, status, reason, fired_at(time.time()))
        queued = state.deliveries.publish(audience.webhooks.values(), [event], "admin")
        return {"campaign_id": campaign_id, "webhooks_queued": queued}
