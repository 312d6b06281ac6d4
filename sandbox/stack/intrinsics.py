"""Evaluate CloudFormation intrinsic functions and Conditions against the local resources.

The resolver knows nothing about moto: what ``Ref``/``Fn::GetAtt`` of a resource returns comes
from a ``ResourceReferences`` object (see ``resources.py``), so the same template resolves to
moto names in the running stack and to host.docker.internal addresses in the SAM env file.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sandbox.stack.cfn_yaml import TemplateError

LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account
LOCAL_REGION = "us-east-1"


class ResourceReferences(Protocol):
    def ref(self, logical_id: str) -> Any: ...

    def get_att(self, logical_id: str, attribute: str) -> Any: ...


class _NoValue:
    """``AWS::NoValue``: the property it stands in for disappears."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class PseudoParameters:
    stack_name: str
    region: str = LOCAL_REGION
    account_id: str = LOCAL_ACCOUNT_ID
    partition: str = "aws"

    def as_dict(self) -> dict[str, Any]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:"
                f"stack/{self.stack_name}/00000000-0000-0000-0000-000000000000"
            ),
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }


def resolve_parameters(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    """Template parameter values: the override if given, else the Default. List types become lists,
    as CloudFormation hands them to ``Ref``. A parameter with neither is left out and reported
    when something references it."""
    declared: Mapping[str, Any] = template.get("Parameters") or {}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"parameter override(s) not declared in the template: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, declaration in declared.items():
        if name in overrides:
            raw: Any = overrides[name]
        elif "Default" in declaration:
            raw = declaration["Default"]
        else:
            continue
        parameter_type = str(declaration.get("Type", "String"))
        if parameter_type == "CommaDelimitedList" or parameter_type.startswith("List<"):
            raw = raw if isinstance(raw, list) else [item.strip() for item in str(raw).split(",")]
            values[name] = [str(item) for item in raw]
        else:
            values[name] = str(raw)
    return values


_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class IntrinsicResolver:
    """Resolve one template's intrinsics for one set of parameter values and resources."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, Any],
        pseudo: PseudoParameters,
        references: ResourceReferences,
    ) -> None:
        self._template = template
        self._parameters = dict(parameters)
        self._pseudo = pseudo.as_dict()
        self._references = references
        self._conditions: Mapping[str, Any] = template.get("Conditions") or {}
        self._condition_values: dict[str, bool] = {}
        self._resources: Mapping[str, Any] = template.get("Resources") or {}

    # -- conditions -----------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._condition_values:
            if name not in self._conditions:
                raise TemplateError(f"unknown Condition {name!r}")
            self._condition_values[name] = self._truth(self.resolve(self._conditions[name]))
        return self._condition_values[name]

    def resource_is_created(self, logical_id: str) -> bool:
        condition = (self._resources.get(logical_id) or {}).get("Condition")
        return condition is None or self.condition(condition)

    @staticmethod
    def _truth(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise TemplateError(f"a condition evaluated to {value!r}, not a boolean")

    # -- values ---------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        """Return ``value`` with every intrinsic evaluated and ``AWS::NoValue`` removed."""
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, argument),) = value.items()
                if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
                    return self._call(key, argument)
            resolved_mapping = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved_mapping.items() if item is not NO_VALUE}
        if isinstance(value, list):
            resolved_items = [self.resolve(item) for item in value]
            return [item for item in resolved_items if item is not NO_VALUE]
        return value

    def ref(self, name: str) -> Any:
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._parameters:
            return self._parameters[name]
        declared_parameters = self._template.get("Parameters") or {}
        if name in declared_parameters:
            raise TemplateError(f"parameter {name!r} has no Default and no local value")
        return self._references.ref(name)

    def _call(self, function: str, argument: Any) -> Any:
        handlers = {
            "Ref": self._fn_ref,
            "Condition": self._fn_condition,
            "Fn::GetAtt": self._fn_get_att,
            "Fn::Sub": self._fn_sub,
            "Fn::Join": self._fn_join,
            "Fn::Select": self._fn_select,
            "Fn::Split": self._fn_split,
            "Fn::If": self._fn_if,
            "Fn::Equals": self._fn_equals,
            "Fn::Not": self._fn_not,
            "Fn::And": self._fn_and,
            "Fn::Or": self._fn_or,
            "Fn::FindInMap": self._fn_find_in_map,
            "Fn::Base64": self._fn_base64,
            "Fn::GetAZs": self._fn_get_azs,
            "Fn::ToJsonString": self._fn_to_json_string,
            "Fn::Length": self._fn_length,
        }
        handler = handlers.get(function)
        if handler is None:
            raise TemplateError(f"{function} is not supported by the local stack")
        return handler(argument)

    def _fn_ref(self, argument: Any) -> Any:
        return self.ref(str(self.resolve(argument)))

    def _fn_condition(self, argument: Any) -> bool:
        return self.condition(str(argument))

    def _fn_get_att(self, argument: Any) -> Any:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        logical_id, attribute = (self.resolve(part) for part in argument)
        return self._references.get_att(str(logical_id), str(attribute))

    def _fn_sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], self.resolve(argument[1])
        else:
            text, variables = argument, {}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} escapes substitution
            if name in variables:
                return str(variables[name])
            if "." in name and name not in self._pseudo:
                logical_id, attribute = name.split(".", 1)
                return str(self._references.get_att(logical_id, attribute))
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(substitute, str(text))

    def _fn_join(self, argument: Any) -> str:
        delimiter, items = argument
        return str(delimiter).join(str(item) for item in self._as_list(self.resolve(items)))

    def _fn_select(self, argument: Any) -> Any:
        index, items = self.resolve(argument)
        return self._as_list(items)[int(index)]

    def _fn_split(self, argument: Any) -> list[str]:
        delimiter, text = self.resolve(argument)
        return str(text).split(str(delimiter))

    def _fn_if(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(str(name)) else when_false)

    def _fn_equals(self, argument: Any) -> bool:
        left, right = self.resolve(argument)
        return str(left) == str(right) if not isinstance(left, list | dict) else left == right

    def _fn_not(self, argument: Any) -> bool:
        (operand,) = argument
        return not self._truth(self.resolve(operand))

    def _fn_and(self, argument: Any) -> bool:
        return all(self._truth(self.resolve(operand)) for operand in argument)

    def _fn_or(self, argument: Any) -> bool:
        return any(self._truth(self.resolve(operand)) for operand in argument)

    def _fn_find_in_map(self, argument: Any) -> Any:
        map_name, top_key, second_key = (str(part) for part in self.resolve(argument[:3]))
        mappings = self._template.get("Mappings") or {}
        try:
            return mappings[map_name][top_key][second_key]
        except KeyError as error:
            if len(argument) > 3 and isinstance(argument[3], dict) and "DefaultValue" in argument[3]:
                return self.resolve(argument[3]["DefaultValue"])
            raise TemplateError(f"Fn::FindInMap: no {map_name}/{top_key}/{second_key}") from error

    def _fn_base64(self, argument: Any) -> str:
        return base64.b64encode(str(self.resolve(argument)).encode()).decode()

    def _fn_get_azs(self, argument: Any) -> list[str]:
        region = str(self.resolve(argument)) or self._pseudo["AWS::Region"]
        return [f"{region}{zone}" for zone in "abc"]

    def _fn_to_json_string(self, argument: Any) -> str:
        return json.dumps(self.resolve(argument), separators=(",", ":"))

    def _fn_length(self, argument: Any) -> int:
        return len(self._as_list(self.resolve(argument)))

    @staticmethod
    def _as_list(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise TemplateError(f"expected a list, got {value!r}")
        return value
