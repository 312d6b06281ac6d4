"""An audience (a Mailchimp "list"): its settings, merge fields, tag registry and members."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.mailchimp.member_documents import iso_timestamp
from sandbox.mailchimp.members import MemberChange, MemberTable
from sandbox.mailchimp.problems import MarketingError, invalid_field
from sandbox.mailchimp.seeding import SEEDED_TAG_NAMES
from sandbox.mailchimp.webhooks import Webhook

MERGE_FIELD_TYPES = (
    "text", "number", "address", "phone", "date", "url", "imageurl", "radio", "dropdown", "birthday", "zip",
)  # fmt: skip
DEFAULT_MERGE_FIELDS = (("FNAME", "First Name"), ("LNAME", "Last Name"))
_MAX_TAG_LENGTH = 10


def _default_options(field_type: str) -> dict[str, Any]:
    if field_type == "text":
        return {"size": 25}
    if field_type == "address":
        return {"default_country": 164}
    if field_type == "phone":
        return {"phone_format": "none"}
    if field_type in ("date", "birthday"):
        return {"date_format": "MM/DD/YYYY" if field_type == "date" else "MM/DD"}
    return {}


@dataclass
class Audience:
    id: str
    name: str
    base_url: str
    web_id: int
    created_at: int = field(default_factory=lambda: int(time.time()))
    double_optin: bool = False
    merge_fields: list[dict[str, Any]] = field(default_factory=list)
    tag_ids: dict[str, int] = field(default_factory=dict)
    # Interest categories ("groups"), each {"id", "grouping_id", "title", "type", "interests":
    # [{"id", "name"}]}: what a webhook's INTERESTS and GROUPINGS are made of.
    interest_categories: list[dict[str, Any]] = field(default_factory=list)
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    journal: list[MemberChange] | None = field(default=None, repr=False)
    members: MemberTable = field(init=False)

    def __post_init__(self) -> None:
        self.members = MemberTable(self.id, self.base_url, self.journal)
        for tag, name in DEFAULT_MERGE_FIELDS:
            self.add_merge_field({"tag": tag, "name": name, "type": "text"})
        self.members.generated.register_tags({name: self.tag_id(name) for name in SEEDED_TAG_NAMES})

    # -- tags ------------------------------------------------------------------------------
    def tag_id(self, name: str) -> int:
        """The id of a tag, created on first use as Mailchimp does."""
        tag_id = self.tag_ids.get(name)
        if tag_id is None:
            tag_id = 1_000 + len(self.tag_ids) + 1
            self.tag_ids[name] = tag_id
        return tag_id

    # -- merge fields ----------------------------------------------------------------------
    def required_merge_tags(self) -> list[str]:
        return [merge_field["tag"] for merge_field in self.merge_fields if merge_field["required"]]

    def merge_field(self, merge_id: int) -> dict[str, Any]:
        for merge_field in self.merge_fields:
            if merge_field["merge_id"] == merge_id:
                return merge_field
        raise MarketingError(404)

    def add_merge_field(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        field_type = body.get("type")
        if not isinstance(name, str) or not name.strip():
            raise invalid_field("name", "This value should not be blank.")
        if field_type not in MERGE_FIELD_TYPES:
            raise invalid_field("type", f"Value must be one of: {', '.join(MERGE_FIELD_TYPES)}")
        tag = str(body.get("tag") or self._tag_from_name(name)).upper()
        if any(existing["tag"] == tag for existing in self.merge_fields):
            raise MarketingError(400, detail=f'A Merge Field with the tag "{tag}" already exists for this list.')
        merge_id = 1 + max((existing["merge_id"] for existing in self.merge_fields), default=0)
        options = _default_options(field_type)
        if isinstance(body.get("options"), dict):
            options.update(body["options"])
        merge_field = {
            "merge_id": merge_id,
            "tag": tag,
            "name": name,
            "type": field_type,
            "required": bool(body.get("required", False)),
            "default_value": str(body.get("default_value", "")),
            "public": bool(body.get("public", False)),
            "display_order": int(body.get("display_order", merge_id + 1)),
            "options": options,
            "help_text": str(body.get("help_text", "")),
        }
        self.merge_fields.append(merge_field)
        self.members.add_merge_tag(tag, "")
        return merge_field

    def _tag_from_name(self, name: str) -> str:
        candidate = re.sub(r"[^A-Za-z0-9]", "", name).upper()[:_MAX_TAG_LENGTH]
        taken = {existing["tag"] for existing in self.merge_fields}
        if candidate and candidate not in taken:
            return candidate
        return f"MMERGE{len(self.merge_fields) + 1}"

    def merge_field_document(self, merge_field: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/3.0/lists/{self.id}/merge-fields/{merge_field['merge_id']}"
        return {
            **merge_field,
            "list_id": self.id,
            "_links": [{"rel": "self", "href": url, "method": "GET"}],
        }

    # -- the list resource -----------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        counts = self.members.counts_by_status()
        url = f"{self.base_url}/3.0/lists/{self.id}"
        return {
            "id": self.id,
            "web_id": self.web_id,
            "name": self.name,
            "contact": {
                "company": "Sandbox Inc.",
                "address1": "1 Loopback Way",
                "address2": "",
                "city": "Localhost",
                "state": "",
                "zip": "00000",
                "country": "US",
                "phone": "",
            },
            "permission_reminder": "You signed up on our website.",
            "use_archive_bar": False,
            "campaign_defaults": {
                "from_name": "Sandbox",
                "from_email": "newsletter@example.org",
                "subject": "",
                "language": "en",
            },
            "notify_on_subscribe": "",
            "notify_on_unsubscribe": "",
            "date_created": iso_timestamp(self.created_at),
            "list_rating": 3,
            "email_type_option": False,
            "subscribe_url_short": f"http://eepurl.com/sandbox-{self.id}",
            "subscribe_url_long": f"{self.base_url}/subscribe?u=sandbox&id={self.id}",
            "beamer_address": f"us21-{self.id}@inbound.mailchimp.com",
            "visibility": "prv",
            "double_optin": self.double_optin,
            "has_welcome": False,
            "marketing_permissions": False,
            "modules": [],
            "stats": {
                "member_count": counts["subscribed"],
                "total_contacts": sum(counts.values()) - counts["archived"],
                "unsubscribe_count": counts["unsubscribed"],
                "cleaned_count": counts["cleaned"],
                "member_count_since_send": counts["subscribed"],
                "unsubscribe_count_since_send": counts["unsubscribed"],
                "cleaned_count_since_send": counts["cleaned"],
                "campaign_count": 0,
                "campaign_last_sent": "",
                "merge_field_count": len(self.merge_fields),
                "avg_sub_rate": 0,
                "avg_unsub_rate": 0,
                "target_sub_rate": 0,
                "open_rate": 0,
                "click_rate": 0,
                "last_sub_date": "",
                "last_unsub_date": "",
            },
            "_links": [
                {"rel": "self", "href": url, "method": "GET"},
                {"rel": "members", "href": f"{url}/members", "method": "GET"},
                {"rel": "merge-fields", "href": f"{url}/merge-fields", "method": "GET"},
            ],
        }
