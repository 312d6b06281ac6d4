"""Generated ("seeded") members: every field derives from the member's slot number, so a
million members cost a status byte, a timestamp and a hash-index entry each until something
writes them."""

from __future__ import annotations

import json
import random
from array import array
from collections.abc import Sequence
from typing import Any

from sandbox.mailchimp.member_documents import (
    STATUS_CODES,
    STATUS_NAMES,
    build_member,
    build_member_template,
    empty_location,
    iso_timestamp,
    positional_template,
    subscriber_hash,
)
from sandbox.mailchimp.projection import PathTree, project

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
_TAG_COUNTS = tuple(len(combination) for combination in TAG_COMBINATIONS)
SEEDED_SOURCE = "Import"
_MAX_PROJECTED_TEMPLATES = 16
# Open and click rates of generated members, pre-serialised (101 x 41 combinations).
_STATS_JSON = tuple(
    f'{{"avg_open_rate":{opens / 100},"avg_click_rate":{clicks / 100}}}' for opens in range(101) for clicks in range(41)
)
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
        self._template_key: tuple[str, ...] | None = None
        self._projected_templates: dict[tuple[tuple[str, ...], str, str], str] = {}
        self._template = ""

    def register_tags(self, tag_ids: dict[str, int]) -> None:
        """Fix the ids of the seeded tags (the audience's tag registry owns them)."""
        documents = tuple([{"id": tag_ids[name], "name": name} for name in combo] for combo in TAG_COMBINATIONS)
        self._tags_documents = documents
        self._tags_json = tuple(
            "[" + ",".join(f'{{"id":{tag["id"]},"name":"{tag["name"]}"}}' for tag in tags) + "]" for tags in documents
        )

    def _person(self, slot: int) -> tuple[int, str, str, str]:
        """(mixed bits, first name, last name, address) of a generated member."""
        mixed = _mix(slot ^ self._salt)
        first = FIRST_NAMES[mixed % len(FIRST_NAMES)]
        last = LAST_NAMES[(mixed >> 7) % len(LAST_NAMES)]
        domain = EMAIL_DOMAINS[(mixed >> 14) % len(EMAIL_DOMAINS)]
        return mixed, first, last, f"{first.lower()}.{last.lower()}.{slot}@{domain}"

    def email(self, slot: int) -> str:
        return self._person(slot)[3]

    def _values(self, slot: int, member_id: str, status_code: int, last_changed: int) -> dict[str, Any]:
        """Every varying field, as the template names them (strings not yet JSON-quoted)."""
        mixed, first, last, email = self._person(slot)
        signed_up = last_changed - 60 - (mixed >> 5) % _SIGNUP_BEFORE_CHANGE_SECONDS
        status = STATUS_NAMES[status_code]
        tags_index = (mixed >> 20) % len(TAG_COMBINATIONS)
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
            "stats": _STATS_JSON[(mixed >> 3) % len(_STATS_JSON)],
            "member_rating": 1 + (mixed >> 17) % 5,
            "timestamp_signup": iso_timestamp(signed_up),
            "timestamp_opt": "" if status == "pending" else iso_timestamp(signed_up + 60),
            "last_changed": iso_timestamp(last_changed),
            "tags": self._tags_json[tags_index],
            "tags_count": len(TAG_COMBINATIONS[tags_index]),
        }

    def document(
        self, slot: int, member_id: str, status_code: int, last_changed: int, merge_tags: list[str]
    ) -> dict[str, Any]:
        values = self._values(slot, member_id, status_code, last_changed)
        names = {"FNAME": values["first_name"], "LNAME": values["last_name"]}
        return build_member(
            base_url=self.base_url,
            list_id=self.list_id,
            member_id=member_id,
            email_address=values["email_address"],
            unique_email_id=values["unique_email_id"],
            contact_id=values["contact_id"],
            full_name=values["full_name"],
            web_id=values["web_id"],
            status=values["status"],
            merge_fields={tag: names.get(tag, "") for tag in merge_tags},
            interests={},
            stats=json.loads(values["stats"]),
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
            tags=json.loads(values["tags"]),
            tags_count=values["tags_count"],
        )

    def json_texts(
        self,
        slots: Sequence[int],
        hashes: Sequence[str],
        status_codes: bytearray,
        last_changed: array[int],
        merge_tags: list[str],
    ) -> list[str]:
        """The JSON of many generated members (one page): the hot path of large exports, so
        the values are built straight into a tuple in TEMPLATE_ORDER."""
        key = tuple(merge_tags)
        if key != self._template_key:
            named = build_member_template(self.base_url, self.list_id, merge_tags, SEEDED_SOURCE)
            self._template = positional_template(named)
            self._template_key = key
        template, person, tags_json, stats_json = self._template, self._person, self._tags_json, _STATS_JSON
        statuses, combinations = STATUS_NAMES, len(TAG_COMBINATIONS)
        texts = []
        for slot in slots:
            mixed, first, last, email = person(slot)
            member_id = hashes[slot]
            changed = last_changed[slot]
            signed_up = changed - 60 - (mixed >> 5) % _SIGNUP_BEFORE_CHANGE_SECONDS
            status = statuses[status_codes[slot]]
            tags_index = (mixed >> 20) % combinations
            texts.append(
                template
                % (
                    member_id,
                    email,
                    member_id[:10],
                    member_id[::-1],
                    f"{first} {last}",
                    WEB_ID_BASE + slot,
                    status,
                    first,
                    last,
                    stats_json[(mixed >> 3) % len(stats_json)],
                    iso_timestamp(signed_up),
                    "" if status == "pending" else iso_timestamp(signed_up + 60),
                    1 + (mixed >> 17) % 5,
                    iso_timestamp(changed),
                    _TAG_COUNTS[tags_index],
                    tags_json[tags_index],
                    member_id,
                    member_id,
                    member_id,
                    member_id,
                )
            )
        return texts

    def projected_json_texts(
        self,
        slots: Sequence[int],
        hashes: Sequence[str],
        status_codes: bytearray,
        last_changed: array[int],
        merge_tags: list[str],
        fields: PathTree | None,
        excluded: PathTree | None,
    ) -> list[str]:
        """Like json_texts, for a fields/exclude_fields projection that ``templatable`` allows."""
        key = (tuple(merge_tags), repr(fields), repr(excluded))
        template = self._projected_templates.get(key)
        if template is None:
            if len(self._projected_templates) >= _MAX_PROJECTED_TEMPLATES:
                self._projected_templates.clear()
            template = build_member_template(
                self.base_url,
                self.list_id,
                merge_tags,
                SEEDED_SOURCE,
                shape=lambda document: project(document, fields, excluded),
            )
            self._projected_templates[key] = template
        values = self._values
        return [template % values(slot, hashes[slot], status_codes[slot], last_changed[slot]) for slot in slots]


def seeded_statuses(rng: random.Random, count: int) -> list[int]:
    codes = [STATUS_CODES[name] for name in STATUS_WEIGHTS]
    return rng.choices(codes, weights=list(STATUS_WEIGHTS.values()), k=count)


def seeded_last_changed(rng: random.Random, count: int, now: int) -> list[int]:
    """Spread over the two years before ``now`` and shuffled against the insertion order,
    so sorting by last_changed is a real sort."""
    oldest = now - LAST_CHANGED_SPREAD_SECONDS
    return [oldest + rng.randrange(LAST_CHANGED_SPREAD_SECONDS) for _ in range(count)]
