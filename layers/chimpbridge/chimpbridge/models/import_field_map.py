"""What an audience import may set (``IMPORT_FIELD_MAP``). A dataclass, apart from the import's
pydantic models, because settings.py (which every function imports) reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chimpbridge.models.checks import expect, expect_text_list, json_members
from chimpbridge.models.signup import settle_field_map


@dataclass(frozen=True, kw_only=True)
class ImportFieldMap:
    """What an import may set (``IMPORT_FIELD_MAP``, JSON; template parameter
    ``ImportFieldMap``), in the signup field map's terms:

    - ``merge_fields``: column -> merge tag, on top of columns named by a merge field's tag
      (``FNAME``) or its name (``First Name``, as Mailchimp's export writes them) while
      ``any_merge_tag`` is true; false limits the import to the tags listed here (as values).
    - ``tags``: the tags a file may apply (a list); empty with ``any_tag`` true (the default)
      applies every tag of the file; ``any_tag`` false and no list applies none.
    - ``default_tags``: applied to every row imported (at most 20).
    - ``language``: whether a language column is applied.
    """

    merge_fields: dict[str, str] = field(default_factory=dict)
    any_merge_tag: bool = True
    tags: list[str] = field(default_factory=list)
    any_tag: bool = True
    default_tags: list[str] = field(default_factory=list)
    language: bool = True

    def __post_init__(self) -> None:
        settle_field_map(self)

    @classmethod
    def from_document(cls, document: Any) -> ImportFieldMap:
        """The map as the parameter holds it; ValueError names the member that is wrong."""
        members = json_members(document, cls, forbid_unknown=True)
        expect(members, bool, "any_merge_tag", "any_tag", "language")
        merge_fields = members.get("merge_fields", {})
        if not (isinstance(merge_fields, dict) and all(isinstance(tag, str) for tag in merge_fields.values())):
            raise ValueError("merge_fields must map column names to merge tags")
        expect_text_list(members, "tags", "default_tags")
        if members.get("tags") and "any_tag" not in members:
            members["any_tag"] = False  # a list of tags is an allowlist
        return cls(**members)
