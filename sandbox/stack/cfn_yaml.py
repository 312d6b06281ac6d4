"""Read CloudFormation/SAM YAML, short intrinsic tags included.

PyYAML's safe loader rejects ``!Ref`` and friends; CloudFormation expands each short tag into
its long ``{"Fn::X": ...}`` form, and so do we, so the resolver only ever sees the long form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class TemplateError(ValueError):
    """The template cannot be read or uses something the local stack cannot emulate."""


# Tag -> long-form key. ``!GetAtt a.b`` also takes the dotted scalar form (handled below).
_FUNCTION_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "Sub": "Fn::Sub",
    "GetAtt": "Fn::GetAtt",
    "If": "Fn::If",
    "Join": "Fn::Join",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "FindInMap": "Fn::FindInMap",
    "Base64": "Fn::Base64",
    "GetAZs": "Fn::GetAZs",
    "Cidr": "Fn::Cidr",
    "ToJsonString": "Fn::ToJsonString",
    "Length": "Fn::Length",
}

# Tags whose value only exists in a deployed account; a local stack cannot invent it.
_REJECTED_TAGS = {
    "ImportValue": "a value exported by another deployed stack",
    "Transform": "a macro that only runs inside CloudFormation",
}


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader plus the CloudFormation short tags."""


def _construct_node(loader: _CloudFormationLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise TemplateError(f"unsupported YAML node {node!r}")


def _make_tag_constructor(tag: str, long_form: str) -> Any:
    def construct(loader: _CloudFormationLoader, node: yaml.Node) -> dict[str, Any]:
        value = _construct_node(loader, node)
        if tag == "GetAtt" and isinstance(value, str):
            logical_id, _, attribute = value.partition(".")
            value = [logical_id, attribute]
        return {long_form: value}

    return construct


def _make_rejecting_constructor(tag: str, why: str) -> Any:
    def construct(loader: _CloudFormationLoader, node: yaml.Node) -> Any:
        raise TemplateError(
            f"!{tag} at line {node.start_mark.line + 1} refers to {why}; the local stack cannot "
            "emulate it. Use a Parameter (with a local value) instead."
        )

    return construct


for _tag, _long_form in _FUNCTION_TAGS.items():
    _CloudFormationLoader.add_constructor(f"!{_tag}", _make_tag_constructor(_tag, _long_form))
for _tag, _why in _REJECTED_TAGS.items():
    _CloudFormationLoader.add_constructor(f"!{_tag}", _make_rejecting_constructor(_tag, _why))


def _reject_long_form(value: Any) -> None:
    """``Fn::ImportValue`` written in long form is just as impossible locally as ``!ImportValue``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("Fn::ImportValue", "Fn::Transform"):
                raise TemplateError(f"{key} cannot be emulated locally; use a Parameter instead")
            _reject_long_form(item)
    elif isinstance(value, list):
        for item in value:
            _reject_long_form(item)


def load_template_text(text: str, source: str = "<template>") -> dict[str, Any]:
    try:
        document = yaml.load(text, Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as error:
        raise TemplateError(f"{source}: not valid YAML: {error}") from error
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{source}: not a CloudFormation template (no Resources section)")
    _reject_long_form(document)
    return document


def load_template(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise TemplateError(f"template not found: {path}") from error
    return load_template_text(text, source=str(path))
