"""Mandrill's two merge languages, enough of each for real templates:

* mailchimp: ``*|NAME|*`` (names are case-insensitive; unknown tags render empty),
  ``*|IF:NAME|*`` / ``*|IFNOT:NAME|*`` / ``*|ELSE:|*`` / ``*|END:IF|*``, ``*|CURRENT_YEAR|*``.
* handlebars: ``{{name}}`` (HTML-escaped), ``{{{name}}}`` (raw), dotted paths,
  ``{{#if}}`` / ``{{#unless}}`` / ``{{else}}``, ``{{#each}}`` with ``{{this}}`` and
  ``{{@index}}``, and ``{{! comments}}``.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MERGE_LANGUAGES = ("mailchimp", "handlebars")


def render(template: str, language: str, variables: Mapping[str, Any]) -> str:
    if not template:
        return template
    if language == "handlebars":
        return _render_nodes(_parse_handlebars(template), [dict(variables)], {})
    return _render_mailchimp(template, variables)


# -- mailchimp ---------------------------------------------------------------------------------
_MAILCHIMP_TAG = re.compile(r"\*\|([^|*]*)\|\*")


def _render_mailchimp(template: str, variables: Mapping[str, Any]) -> str:
    values = {name.upper(): value for name, value in variables.items()}
    values.setdefault("CURRENT_YEAR", time.strftime("%Y"))
    output: list[str] = []
    # One entry per open IF: (this branch is rendered, a branch was already taken).
    branches: list[tuple[bool, bool]] = []
    position = 0
    for match in _MAILCHIMP_TAG.finditer(template):
        rendering = all(active for active, _ in branches)
        if rendering:
            output.append(template[position : match.start()])
        position = match.end()
        tag = match.group(1).strip()
        upper = tag.upper()
        if upper.startswith(("IF:", "IFNOT:")):
            condition = _mailchimp_condition(tag.split(":", 1)[1], values)
            if upper.startswith("IFNOT:"):
                condition = not condition
            branches.append((condition, condition))
        elif upper.startswith("ELSEIF:") and branches:
            _, taken = branches[-1]
            condition = not taken and _mailchimp_condition(tag.split(":", 1)[1], values)
            branches[-1] = (condition, taken or condition)
        elif upper.startswith("ELSE:") and branches:
            _, taken = branches[-1]
            branches[-1] = (not taken, True)
        elif upper.startswith("END:IF") and branches:
            branches.pop()
        elif rendering:
            value = values.get(upper)
            output.append("" if value is None else str(value))
    if all(active for active, _ in branches):
        output.append(template[position:])
    return "".join(output)


def _mailchimp_condition(expression: str, values: Mapping[str, Any]) -> bool:
    comparison = re.fullmatch(r"\s*([^=!]+?)\s*(=|!=)\s*(.*?)\s*", expression)
    if comparison is None:
        return _truthy(values.get(expression.strip().upper()))
    name, operator, expected = comparison.groups()
    actual = str(values.get(name.upper(), ""))
    return (actual == expected) == (operator == "=")


# -- handlebars --------------------------------------------------------------------------------
_HANDLEBARS_TAG = re.compile(r"\{\{\{\s*(?P<raw>.+?)\s*\}\}\}|\{\{(?P<tag>.+?)\}\}", re.DOTALL)


@dataclass
class _Block:
    helper: str
    argument: str
    body: list[Any] = field(default_factory=list)
    inverse: list[Any] = field(default_factory=list)
    in_inverse: bool = False

    def append(self, node: Any) -> None:
        (self.inverse if self.in_inverse else self.body).append(node)


@dataclass(frozen=True)
class _Variable:
    path: str
    escape: bool


def _parse_handlebars(template: str) -> list[Any]:
    root = _Block("root", "")
    stack = [root]
    position = 0
    for match in _HANDLEBARS_TAG.finditer(template):
        stack[-1].append(template[position : match.start()])
        position = match.end()
        if match.group("raw") is not None:
            stack[-1].append(_Variable(match.group("raw"), escape=False))
            continue
        tag = match.group("tag").strip()
        if tag.startswith("!"):
            continue
        if tag.startswith("#"):
            helper, _, argument = tag[1:].partition(" ")
            block = _Block(helper.strip(), argument.strip())
            stack[-1].append(block)
            stack.append(block)
        elif tag.startswith("/"):
            if len(stack) > 1:
                stack.pop()
        elif tag == "else" and len(stack) > 1:
            stack[-1].in_inverse = True
        else:
            stack[-1].append(_Variable(tag, escape=True))
    stack[-1].append(template[position:])
    return root.body


def _lookup(path: str, contexts: list[Any], locals_: Mapping[str, Any]) -> Any:
    if path.startswith("@"):
        return locals_.get(path)
    if path in ("this", "."):
        return contexts[-1]
    parts = path.removeprefix("this.").split(".")
    for context in reversed(contexts):
        value = _get(context, parts[0])
        if value is not None:
            for part in parts[1:]:
                value = _get(value, part)
            return value
    return None


def _get(container: Any, key: str) -> Any:
    if not isinstance(container, Mapping):
        return None
    if key in container:
        return container[key]
    lowered = key.lower()
    return next((value for name, value in container.items() if str(name).lower() == lowered), None)


def _truthy(value: Any) -> bool:
    return value not in (None, False, "", 0) and value != [] and value != {}


def _render_nodes(nodes: list[Any], contexts: list[Any], locals_: Mapping[str, Any]) -> str:
    output: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            output.append(node)
        elif isinstance(node, _Variable):
            value = _lookup(node.path, contexts, locals_)
            text = "" if value is None else _stringify(value)
            output.append(html.escape(text) if node.escape else text)
        elif isinstance(node, _Block):
            output.append(_render_block(node, contexts, locals_))
    return "".join(output)


def _render_block(block: _Block, contexts: list[Any], locals_: Mapping[str, Any]) -> str:
    value = _lookup(block.argument, contexts, locals_)
    if block.helper == "if":
        chosen = block.body if _truthy(value) else block.inverse
        return _render_nodes(chosen, contexts, locals_)
    if block.helper == "unless":
        chosen = block.inverse if _truthy(value) else block.body
        return _render_nodes(chosen, contexts, locals_)
    if block.helper == "each":
        items = list(value.values()) if isinstance(value, Mapping) else value
        if not isinstance(items, list) or not items:
            return _render_nodes(block.inverse, contexts, locals_)
        return "".join(
            _render_nodes(block.body, [*contexts, item], {"@index": index, "@first": index == 0})
            for index, item in enumerate(items)
        )
    if block.helper == "with":
        if not _truthy(value):
            return _render_nodes(block.inverse, contexts, locals_)
        return _render_nodes(block.body, [*contexts, value], locals_)
    return _render_nodes(block.body, contexts, locals_)


def _stringify(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)
