"""What each column (or JSON Lines member) of a file means: the address, a merge field, tags,
language, status or consent; anything else is not imported.

Merge fields are found by their tag (``FNAME``) or by their name (``First Name``, as
Mailchimp's export and ours write the header), so an export imports back unchanged; the
field map may name other columns and may forbid the rest. Columns of the export that describe
a member's history (``MEMBER_RATING``, ``OPTIN_TIME``, ``LEID``...) are Mailchimp's to set and
are passed over like any column nobody named.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any, Literal

from chimpbridge.models.import_field_map import ImportFieldMap

Meaning = Literal["email", "tags", "language", "status", "consent", "merge", "ignored"]

EMAIL_COLUMNS = frozenset({"email address", "email", "email_address", "e-mail"})
RESERVED = {"tags": "tags", "tag": "tags", "language": "language", "status": "status", "consent": "consent"}


@dataclass(frozen=True)
class Column:
    meaning: Meaning
    tag: str | None = None


class Columns:
    """Resolves column names once each (a JSON Lines file may vary its members from row to row)."""

    def __init__(self, field_map: ImportFieldMap, merge_fields: dict[str, str]) -> None:
        # merge_fields: the audience's merge fields, tag -> name
        self.field_map = field_map
        self.tags = set(merge_fields)
        self.by_name = {name.strip().casefold(): tag for tag, name in merge_fields.items()}
        self._resolved: dict[str, Column] = {}

    def __call__(self, column: str) -> Column:
        found = self._resolved.get(column)
        if found is None:
            found = self._resolved[column] = self._resolve(column.strip())
        return found

    def _resolve(self, column: str) -> Column:
        folded = column.casefold()
        mapped = self.field_map.merge_fields.get(column)
        if mapped is not None:
            found = Column("merge", mapped) if mapped in self.tags else None
        elif folded in EMAIL_COLUMNS:
            found = Column("email")
        elif folded in RESERVED:
            meaning = RESERVED[folded]
            found = None if meaning == "language" and not self.field_map.language else Column(meaning)  # type: ignore[arg-type]
        elif not self.field_map.any_merge_tag:
            found = None
        elif column.upper() in self.tags:
            found = Column("merge", column.upper())
        else:
            tag = self.by_name.get(folded)
            found = Column("merge", tag) if tag is not None else None
        return found or Column("ignored")


def tag_names(value: Any) -> list[str]:
    """Tags as a file holds them: Mailchimp's export cell (``"vip","2024 fair"``), a plain
    comma-separated list, or (JSON Lines) a list of names or of ``{"name": ...}`` objects."""
    if isinstance(value, list):
        names = [item.get("name") if isinstance(item, dict) else item for item in value]
        return [str(name).strip() for name in names if isinstance(name, str | int) and str(name).strip()]
    if not isinstance(value, str) or not value.strip():
        return []
    cells = next(csv.reader([value], skipinitialspace=True), [])
    return [cell.strip() for cell in cells if cell.strip()]
