"""Compact storage of one audience's members, and the filtered/sorted views that paging reads.

Every member has a slot. Status and last_changed of all members live in flat arrays (what
filters and sorts read); a member written through the API also keeps its full document
(and its cached JSON); a seeded member is generated from its slot until it is written.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.mailchimp.member_documents import (
    ABSENT,
    ARCHIVED,
    STATUS_CODES,
    STATUS_NAMES,
    dump_member,
    subscriber_hash,
    templatable,
)
from sandbox.mailchimp.projection import PathTree, project
from sandbox.mailchimp.seeding import SeededMembers, seeded_last_changed, seeded_statuses

SORTABLE_FIELDS = ("last_changed", "timestamp_opt", "timestamp_signup")
_MAX_CACHED_VIEWS = 8


@dataclass(frozen=True, slots=True)
class MemberQuery:
    """The filters and order of GET /lists/{id}/members. Timestamps are epoch seconds;
    ``since_last_changed`` is inclusive (exclusive with ``since_inclusive`` False, as Mailchimp's
    reference words it) and ``before_last_changed`` exclusive."""

    status: int | None = None
    since_last_changed: int | None = None
    before_last_changed: int | None = None
    since_inclusive: bool = True
    unique_email_id: str | None = None
    sort_field: str | None = None
    descending: bool = False


# (list id, document before, document after) of every member written through the API or a
# control action: None before means created, None after means permanently deleted. Drained
# into webhook deliveries by whoever made the change (see SandboxState.publish_member_changes).
MemberChange = tuple[str, dict[str, Any] | None, dict[str, Any] | None]


class MemberTable:
    def __init__(self, list_id: str, base_url: str, journal: list[MemberChange] | None = None) -> None:
        self.list_id = list_id
        self.journal = journal
        self.generated = SeededMembers(list_id, base_url)
        self.merge_tags: list[str] = []
        self.status_codes = bytearray()
        self.last_changed = array("q")
        self.slot_by_hash: dict[str, int] = {}
        # The reverse of slot_by_hash (the same str objects, so 8 bytes a member): generated
        # members are served without hashing their address again.
        self.hash_of_slot: list[str] = []
        self.forgotten_hashes: set[str] = set()
        # Slots in insertion order (the default order of the member list), without the
        # permanently deleted ones.
        self.order: list[int] = []
        self._documents: dict[int, dict[str, Any]] = {}
        self._json_cache: dict[int, str] = {}
        self._views: dict[MemberQuery, list[int]] = {}
        self._views_version = 0
        self.version = 0

    # -- reading ---------------------------------------------------------------------------
    def find(self, member_hash: str) -> int | None:
        return self.slot_by_hash.get(member_hash)

    def document(self, slot: int) -> dict[str, Any]:
        """The member's document. Written members return the stored dict: copy before changing."""
        stored = self._documents.get(slot)
        if stored is not None:
            return stored
        return self.generated.document(
            slot, self.hash_of_slot[slot], self.status_codes[slot], self.last_changed[slot], self.merge_tags
        )

    def json_texts(
        self, slots: Sequence[int], fields: PathTree | None = None, excluded: PathTree | None = None
    ) -> list[str]:
        """The JSON of each member, in order, optionally projected (member-level
        fields/exclude_fields trees): written members from their cached serialisation,
        generated ones from a template."""
        if fields is not None or excluded is not None:
            return self._projected_json(slots, fields, excluded)
        documents = self._documents
        if not documents:
            return self._generated_json(slots)
        texts: list[str] = []
        generated: list[int] = []
        for slot in slots:
            if slot in documents:
                texts.append(self._written_json(slot))
            else:
                texts.append("")
                generated.append(slot)
        if generated:
            rendered = iter(self._generated_json(generated))
            texts = [text or next(rendered) for text in texts]
        return texts

    def _projected_json(self, slots: Sequence[int], fields: PathTree | None, excluded: PathTree | None) -> list[str]:
        documents = self._documents
        generated = [slot for slot in slots if slot not in documents]
        if templatable(fields, excluded):
            rendered = iter(
                self.generated.projected_json_texts(
                    generated,
                    self.hash_of_slot,
                    self.status_codes,
                    self.last_changed,
                    self.merge_tags,
                    fields,
                    excluded,
                )
            )
        else:
            rendered = iter([dump_member(project(self.document(slot), fields, excluded)) for slot in generated])
        return [
            dump_member(project(documents[slot], fields, excluded)) if slot in documents else next(rendered)
            for slot in slots
        ]

    def _generated_json(self, slots: Sequence[int]) -> list[str]:
        return self.generated.json_texts(
            slots, self.hash_of_slot, self.status_codes, self.last_changed, self.merge_tags
        )

    def _written_json(self, slot: int) -> str:
        text = self._json_cache.get(slot)
        if text is None:
            text = self._json_cache[slot] = dump_member(self._documents[slot])
        return text

    def written_documents(self) -> list[dict[str, Any]]:
        """Members written through the API (generated ones have no interests)."""
        return list(self._documents.values())

    def status_of(self, slot: int) -> str:
        return STATUS_NAMES[self.status_codes[slot]]

    def counts_by_status(self) -> dict[str, int]:
        return {name: self.status_codes.count(code) for name, code in STATUS_CODES.items()}

    def newest(self, limit: int) -> list[int]:
        """The most recently added members still in the audience, newest first."""
        newest: list[int] = []
        for slot in reversed(self.order):
            if self.status_codes[slot] != ARCHIVED:
                newest.append(slot)
                if len(newest) == limit:
                    break
        return newest

    def select(self, query: MemberQuery) -> Sequence[int]:
        """Slots matching the query, in the query's order. Cached until the next write, so
        paging through a million members filters and sorts once."""
        if query == MemberQuery() and ARCHIVED not in self.status_codes:
            return self.order
        if self._views_version != self.version:
            self._views.clear()
            self._views_version = self.version
        view = self._views.get(query)
        if view is None:
            view = self._compute_view(query)
            if len(self._views) >= _MAX_CACHED_VIEWS:
                self._views.pop(next(iter(self._views)))
            self._views[query] = view
        return view

    def _compute_view(self, query: MemberQuery) -> list[int]:
        codes = self.status_codes
        if query.status is None:
            slots = [slot for slot in self.order if codes[slot] != ARCHIVED]
        else:
            wanted = query.status
            slots = [slot for slot in self.order if codes[slot] == wanted]
        changed = self.last_changed
        if query.since_last_changed is not None:
            since = query.since_last_changed if query.since_inclusive else query.since_last_changed + 1
            slots = [slot for slot in slots if changed[slot] >= since]
        if query.before_last_changed is not None:
            before = query.before_last_changed
            slots = [slot for slot in slots if changed[slot] < before]
        if query.unique_email_id is not None:
            slots = [slot for slot in slots if self.document(slot)["unique_email_id"] == query.unique_email_id]
        if query.sort_field == "last_changed":
            slots.sort(key=changed.__getitem__, reverse=query.descending)
        elif query.sort_field is not None:
            field = query.sort_field
            slots.sort(key=lambda slot: self.document(slot)[field] or "", reverse=query.descending)
        elif query.descending:
            slots.reverse()
        return slots

    # -- writing ---------------------------------------------------------------------------
    def _changed(self) -> None:
        self.version += 1

    def insert(self, member_hash: str, document: dict[str, Any], last_changed: int) -> int:
        slot = len(self.status_codes)
        self.status_codes.append(STATUS_CODES[document["status"]])
        self.last_changed.append(last_changed)
        self.slot_by_hash[member_hash] = slot
        self.hash_of_slot.append(member_hash)
        self.order.append(slot)
        self._documents[slot] = document
        self._changed()
        if self.journal is not None:
            self.journal.append((self.list_id, None, document))
        return slot

    def replace(self, slot: int, document: dict[str, Any], last_changed: int) -> None:
        """Store a changed document (a seeded member becomes a written one here)."""
        before = self.document(slot)
        old_hash = before["id"]
        if old_hash != document["id"]:
            del self.slot_by_hash[old_hash]
            self.slot_by_hash[document["id"]] = slot
            self.hash_of_slot[slot] = document["id"]
        self.status_codes[slot] = STATUS_CODES[document["status"]]
        self.last_changed[slot] = last_changed
        self._documents[slot] = document
        self._json_cache.pop(slot, None)
        self._changed()
        if self.journal is not None:
            self.journal.append((self.list_id, before, document))

    def forget(self, slot: int) -> None:
        """Permanent delete: the address may never be re-imported."""
        before = self.document(slot)
        member_hash = before["id"]
        self.forgotten_hashes.add(member_hash)
        del self.slot_by_hash[member_hash]
        self.status_codes[slot] = ABSENT
        self.order.remove(slot)
        self._documents.pop(slot, None)
        self._json_cache.pop(slot, None)
        self._changed()
        if self.journal is not None:
            self.journal.append((self.list_id, before, None))

    def add_merge_tag(self, tag: str, default_value: str) -> None:
        self.merge_tags.append(tag)
        for document in self._documents.values():
            document["merge_fields"].setdefault(tag, default_value)
        self._json_cache.clear()
        self._changed()

    def seed(self, count: int, rng: random.Random, now: int) -> int:
        """Append ``count`` generated members; returns how many were added (an address that
        is already a member or was forgotten is skipped)."""
        first_slot = len(self.status_codes)
        self.status_codes.extend(seeded_statuses(rng, count))
        self.last_changed.extend(seeded_last_changed(rng, count, now))
        email_of = self.generated.email
        index = self.slot_by_hash
        forgotten = self.forgotten_hashes
        hashes = self.hash_of_slot
        added: list[int] = []
        for slot in range(first_slot, first_slot + count):
            member_hash = subscriber_hash(email_of(slot))
            hashes.append(member_hash)
            if member_hash in index or member_hash in forgotten:
                self.status_codes[slot] = ABSENT
                continue
            index[member_hash] = slot
            added.append(slot)
        self.order.extend(added)
        self._changed()
        return len(added)
