"""Generated ("seeded") members: every field derives from the member's slot number, so a
million members cost a status byte, a timestamp and a hash-index entry each until something
writes them."""

from __future__ import annotations

import random
from typing import Any

from sandbox.mailchimp.member_documents import (
    STATUS_CODES,
    STATUS_NAMES,
    build_member,
    build_member_template,
    empty_location,
    iso_timestamp,
    subscriber_hash,
)

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Ana", "Arjun", "Beatriz", "Ben", "Carla", "Chen", "Chidi", "Daniel",
    "Dara", "Elena", "Emeka", "Eva", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan",
    "Jamal", "Jin", "Julia", "Kai", "Kenji", "Lara", "Leo", "Lina", "Luca", "Maya", "Mei",
    "Mateo", "Nadia", "Nia", "Noah", "Olga", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Sara",
    "Tariq", "Tomas", "Uma", "Vera", "Wei", "Yara", "Yusuf", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Abbott", "Adeyemi", "Alvarez", "Berg", "Brown", "Castro", "Chen", "Costa", "Dubois",
    "Eriksen", "Fischer", "Garcia", "Gupta", "Haddad", "Hughes", "Ito", "Jansen", "Kim",
    "Kowalski", "Larsen", "Lopez", "Mensah", "Moreau", "Murphy", "Nakamura", "Novak", "Okafor",
    "Olsen", "Patel", "Petrov", "Quispe", "Rossi", "Santos", "Schmidt", "Silva", "Singh",
    "Smith", "Tanaka", "Torres", "Umarov", "Vargas", "Wagner", "Wang", "Weber", "Xu",
    "Yamamoto", "Zhang", "Zimmermann",
)  # fmt: skip
EMAIL_DOMAINS = ("example.net", "example.org", "mail.example.net")
# Repeated entries weight the mix: most members carry no tag or one.
TAG_COMBINATIONS: tuple[tuple[str, ...], ...] = (
    (), (), (), ("newsletter",), ("newsletter",), ("customer",), ("newsletter", "customer"),
    ("vip", "customer"), ("webinar-2024",), ("newsletter", "webinar-2024"),
)  # fmt: skip
SEEDED_TAG_NAMES = ("newsletter", "customer", "vip", "webinar-2024")
# Mostly subscribed, as real audiences are.
STATUS_WEIGHTS = {"subscribed": 85, "unsubscribed": 7, "cleaned": 3, "pending": 5}
LAST_CHANGED_SPREAD_SECONDS = 2 * 365 * 86400
_SIGNUP_BEFORE_CHANGE_SECONDS = 30 * 86400
SEEDED_SOURCE = "Import"
WEB_ID_BASE = 10_000_000


def _mix(value: int) -> int:
    """A cheap 32-bit integer hash (so neighbouring slots look unrelated)."""
    value = (value ^ (value >> 16)) * 0x45D9F3B & 0xFFFFFFFF
    value = (value ^ (value >> 16)) * 0x45D9F3B & 0xFFFFFFFF
    return value ^ (value >> 16)


class SeededMembers:
    """Derives the fields of the generated members of one audience from their slot number."""

    def __init__(self, list_id: str, base_url: str) -> None:
        self.list_id = list_id
        self.base_url = base_url
        self._salt = _mix(int(subscriber_hash(list_id)[:8], 16))
        self._tags_json: tuple[str, ...] = ()
        self._tags_documents: tuple[list[dict[str, Any]], ...] = ()
        self._template_key: tuple[str, ...] | None = None
        self._template = ""

    def register_tags(self, tag_ids: dict[str, int]) -> None:
        """Fix the ids of the seeded tags (the audience's tag registry owns them)."""
        documents = tuple([{"id": tag_ids[name], "name": name} for name in combo] for combo in TAG_COMBINATIONS)
        self._tags_documents = documents
        self._tags_json = tuple(
            "[" + ",".join(f'{{"id":{tag["id"]},"name":"{tag["name"]}"}}' for tag in tags) + "]" for tags in documents
        )

    def email(self, slot: int) -> str:
        mixed = _mix(slot ^ self._salt)
        first = FIRST_NAMES[mixed % len(FIRST_NAMES)]
        last = LAST_NAMES[(mixed >> 7) % len(LAST_NAMES)]
        domain = EMAIL_DOMAINS[(mixed >> 14) % len(EMAIL_DOMAINS)]
        return f"{first.lower()}.{last.lower()}.{slot}@{domain}"

    def _values(self, slot: int, status_code: int, last_changed: int) -> dict[str, Any]:
        mixed = _mix(slot ^ self._salt)
        first = FIRST_NAMES[mixed % len(FIRST_NAMES)]
        last = LAST_NAMES[(mixed >> 7) % len(LAST_NAMES)]
        domain = EMAIL_DOMAINS[(mixed >> 14) % len(EMAIL_DOMAINS)]
        email = f"{first.lower()}.{last.lower()}.{slot}@{domain}"
        member_id = subscriber_hash(email)
        signed_up = last_changed - 60 - (mixed >> 5) % _SIGNUP_BEFORE_CHANGE_SECONDS
        status = STATUS_NAMES[status_code]
        return {
            "member_id": member_id,
            "email_address": email,
            "unique_email_id": member_id[:10],
            "contact_id": member_id[::-1],
            "full_name": f"{first} {last}",
            "first_name": first,
            "last_name": last,
            "web_id": WEB_ID_BASE + slot,
            "status": status,
            "open_rate": (mixed >> 3) % 101 / 100,
            "click_rate": (mixed >> 11) % 41 / 100,
            "member_rating": 1 + (mixed >> 17) % 5,
            "timestamp_signup": iso_timestamp(signed_up),
            "timestamp_opt": "" if status == "pending" else iso_timestamp(signed_up + 60),
            "last_changed": iso_timestamp(last_changed),
            "tags_index": (mixed >> 20) % len(TAG_COMBINATIONS),
        }

    def document(self, slot: int, status_code: int, last_changed: int, merge_tags: list[str]) -> dict[str, Any]:
        values = self._values(slot, status_code, last_changed)
        names = {"FNAME": values["first_name"], "LNAME": values["last_name"]}
        tags = [dict(tag) for tag in self._tags_documents[values["tags_index"]]]
        return build_member(
            base_url=self.base_url,
            list_id=self.list_id,
            member_id=values["member_id"],
            email_address=values["email_address"],
            unique_email_id=values["unique_email_id"],
            contact_id=values["contact_id"],
            full_name=values["full_name"],
            web_id=values["web_id"],
            status=values["status"],
            merge_fields={tag: names.get(tag, "") for tag in merge_tags},
            interests={},
            stats={"avg_open_rate": values["open_rate"], "avg_click_rate": values["click_rate"]},
            ip_signup="",
            timestamp_signup=values["timestamp_signup"],
            ip_opt="",
            timestamp_opt=values["timestamp_opt"],
            member_rating=values["member_rating"],
            last_changed=values["last_changed"],
            language="",
            vip=False,
            location=empty_location(),
            source=SEEDED_SOURCE,
            tags=tags,
            tags_count=len(tags),
        )

    def json_text(self, slot: int, status_code: int, last_changed: int, merge_tags: list[str]) -> str:
        key = tuple(merge_tags)
        if key != self._template_key:
            self._template = build_member_template(self.base_url, self.list_id, merge_tags, SEEDED_SOURCE)
            self._template_key = key
        values = self._values(slot, status_code, last_changed)
        tags_index = values["tags_index"]
        values["stats"] = f'{{"avg_open_rate":{values["open_rate"]},"avg_click_rate":{values["click_rate"]}}}'
        values["tags"] = self._tags_json[tags_index]
        values["tags_count"] = len(TAG_COMBINATIONS[tags_index])
        return self._template % values


def seeded_statuses(rng: random.Random, count: int) -> list[int]:
    codes = [STATUS_CODES[name] for name in STATUS_WEIGHTS]
    return rng.choices(codes, weights=list(STATUS_WEIGHTS.values()), k=count)


def seeded_last_changed(rng: random.Random, count: int, now: int) -> list[int]:
    """Spread over the two years before ``now`` and shuffled against the insertion order,
    so sorting by last_changed is a real sort."""
    oldest = now - LAST_CHANGED_SPREAD_SECONDS
    return [oldest + rng.randrange(LAST_CHANGED_SPREAD_SECONDS) for _ in range(count)]
