"""Mailchimp's ``fields`` / ``exclude_fields`` query parameters: comma-separated dotted paths
(``members.email_address,members.merge_fields.FNAME,total_items``). Lists are projected
element by element."""

from __future__ import annotations

from typing import Any

# {"members": {"email_address": None}, "total_items": None}: None marks a whole value.
PathTree = dict[str, "PathTree | None"]


def parse_paths(spec: str | None) -> PathTree | None:
    if not spec:
        return None
    tree: PathTree = {}
    for path in spec.split(","):
        parts = [part for part in path.strip().split(".") if part]
        if not parts:
            continue
        node: PathTree | None = tree
        for part in parts[:-1]:
            assert node is not None
            if part in node and node[part] is None:
                node = None  # a shorter path already selects the whole value
                break
            node = node.setdefault(part, {})
        if node is not None:
            node[parts[-1]] = None
    return tree or None


def include_fields(value: Any, tree: PathTree) -> Any:
    if isinstance(value, list):
        return [include_fields(item, tree) for item in value]
    if isinstance(value, dict):
        projected = {}
        for key, item in value.items():
            if key in tree:
                subtree = tree[key]
                projected[key] = item if subtree is None else include_fields(item, subtree)
        return projected
    return value


def exclude_fields(value: Any, tree: PathTree) -> Any:
    if isinstance(value, list):
        return [exclude_fields(item, tree) for item in value]
    if isinstance(value, dict):
        projected = {}
        for key, item in value.items():
            if key not in tree:
                projected[key] = item
            else:
                subtree = tree[key]
                if subtree is not None:
                    projected[key] = exclude_fields(item, subtree)
        return projected
    return value


def project(document: Any, fields: PathTree | None, excluded: PathTree | None) -> Any:
    if fields is not None:
        document = include_fields(document, fields)
    if excluded is not None:
        document = exclude_fields(document, excluded)
    return document
