"""What an audience import may set (``IMPORT_FIELD_MAP``). A dataclass, apart from the import's
pydantic models, because settings.py (which every function imports) reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
        object.__setattr__(self, "merge_fields", {name: tag.strip().upper() for name, tag in self.merge_fields.items()})
        if len(self.default_tags) > 20:
            raise ValueError("default_tags: at most 20")

    @classmethod
    def from_document(cls, document: Any) -> ImportFieldMap:
        """The map as the parameter holds it; ValueError names the member that is wrong."""
        if not isinstance(document, dict):
            raise ValueError("the import field map must be a JSON object")
        unknown = document.keys() - {"merge_fields", "any_merge_tag", "tags", "any_tag", "default_tags", "language"}
        if unknown:
            raise ValueError("unknown member " + ", ".join(sorted(unknown)))
        for name in ("any_merge_tag", "any_tag", "language"):
            if name in document and not isinstance(document[name], bool):
                raise ValueError(f"{name} must be true or false")
        merge_fields = document.get("merge_fields", {})
        if not (isinstance(merge_fields, dict) and all(isinstance(tag, str) for tag in merge_fields.values())):
            raise ValueError("merge_fields must map column names to merge tags")
        for name in ("tags", "default_tags"):
            value = document.get(name, [])
            if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
                raise ValueError(f"{name} must be a list of text")
        members = dict(document)
        if members.get("tags") and "any_tag" not in members:
            members["any_tag"] = False  # a list of tags is an allowlist
        return cls(**members)
