"""AWS WAF in front of the local API: the template's web ACLs, as far as they can be emulated.

A web ACL counts when the template creates it (its Condition holds, so the template parameters
decide, as in AWS) and a ``AWS::WAFv2::WebACLAssociation`` of the template ties it to one of the
template's Apis. Its rules are evaluated in priority order:

- ``RateBasedStatement`` with ``AggregateKeyType: IP`` (the client address; ``FORWARDED_IP``
  reads the configured header instead): the requests of one key that match the optional
  ``ScopeDownStatement`` are counted over a sliding ``EvaluationWindowSec``; past ``Limit`` the
  rule's action applies to that key's matching requests.
- Statements: ``ByteMatchStatement`` on ``UriPath``, ``Method``, ``QueryString`` or
  ``SingleHeader`` (text transformations ``NONE``, ``URL_DECODE``, ``LOWERCASE``), and
  ``AndStatement``/``OrStatement``/``NotStatement`` of those.
- Actions: ``Block`` (its ``CustomResponse``, else API Gateway's ``WAF_FILTERED`` 403),
  ``Allow``, ``Count``; then the ACL's ``DefaultAction``.

A rule with anything else (managed rule groups, IP sets, geo matches...) is skipped, with a
note at start. AWS WAF counts rates approximately and reacts within seconds; here each request
is counted at once, so the first request over the limit is the first one blocked.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from sandbox.stack.apigw_events import HttpRequest, HttpResponse
from sandbox.stack.intrinsics import IntrinsicResolver
from sandbox.stack.template import SamTemplate

WEB_ACL_TYPE = "AWS::WAFv2::WebACL"
ASSOCIATION_TYPE = "AWS::WAFv2::WebACLAssociation"
CONTENT_TYPES = {"TEXT_PLAIN": "text/plain", "TEXT_HTML": "text/html", "APPLICATION_JSON": "application/json"}
Statement = Callable[[HttpRequest], bool]


class NotEmulated(Exception):
    """A part of a rule the local WAF does not know."""


@dataclass
class RateCounter:
    """Requests per key over a sliding window."""

    limit: int
    window_seconds: float
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def over_limit(self, key: str) -> bool:
        """Count one request of ``key``; True when its count in the window exceeds the limit."""
        now = self.clock()
        with self._lock:
            seen = self._seen.setdefault(key, deque())
            seen.append(now)
            while seen and seen[0] <= now - self.window_seconds:
                seen.popleft()
            return len(seen) > self.limit


@dataclass
class Rule:
    name: str
    priority: int
    action: str  # Block, Allow or Count
    applies: Callable[[HttpRequest], bool]
    custom_response: Mapping[str, Any] | None = None


@dataclass
class WebAcl:
    logical_id: str
    rules: list[Rule]
    default_block: bool
    bodies: Mapping[str, Any]

    def check(self, request: HttpRequest) -> HttpResponse | None:
        """The answer WAF gives instead of the API, or None to let the request through."""
        for rule in self.rules:
            if not rule.applies(request) or rule.action == "Count":
                continue
            return self._blocked(rule.custom_response) if rule.action == "Block" else None
        return self._blocked(None) if self.default_block else None

    def _blocked(self, custom: Mapping[str, Any] | None) -> HttpResponse:
        if custom is None:
            # API Gateway's WAF_FILTERED answer (its gateway responses may word it otherwise).
            return HttpResponse(403, [("Content-Type", "application/json")], b'{"message":"Forbidden"}')
        headers = [(str(item["Name"]), str(item["Value"])) for item in custom.get("ResponseHeaders") or []]
        body = b""
        key = custom.get("CustomResponseBodyKey")
        if key:
            document = self.bodies[key]
            headers.insert(0, ("Content-Type", CONTENT_TYPES.get(str(document.get("ContentType")), "text/plain")))
            body = str(document.get("Content", "")).encode()
        return HttpResponse(int(custom["ResponseCode"]), headers, body)


def web_acls(
    template: SamTemplate, resolver: IntrinsicResolver, notes: list[str], clock: Callable[[], float] = time.monotonic
) -> dict[str, WebAcl]:
    """Api logical id -> the web ACL associated with it, for the ACLs the template creates."""
    associated: dict[str, str] = {}
    for logical_id, resource in template.resources_of_type(ASSOCIATION_TYPE).items():
        if not resolver.resource_is_created(logical_id):
            continue
        properties = resource.get("Properties") or {}
        acl_id = _referenced(properties.get("WebACLArn"))
        for api_id in _referenced_all(properties.get("ResourceArn")):
            if (template.resources.get(api_id) or {}).get("Type") == "AWS::Serverless::Api" and acl_id:
                associated[api_id] = acl_id
    acls: dict[str, WebAcl] = {}
    for api_id, acl_id in associated.items():
        if not resolver.resource_is_created(acl_id) or template.resources[acl_id].get("Type") != WEB_ACL_TYPE:
            continue
        properties = template.resources[acl_id].get("Properties") or {}
        rules = []
        for raw in sorted(resolver.resolve(properties.get("Rules") or []), key=lambda rule: int(rule["Priority"])):
            try:
                rules.append(_rule(raw, clock))
            except NotEmulated as why:
                notes.append(f"{acl_id}: rule {raw.get('Name')} is not emulated locally ({why})")
        default = resolver.resolve(properties.get("DefaultAction") or {"Allow": {}})
        bodies = resolver.resolve(properties.get("CustomResponseBodies") or {})
        acls[api_id] = WebAcl(acl_id, rules, "Block" in default, bodies)
    return acls


def _rule(raw: Mapping[str, Any], clock: Callable[[], float]) -> Rule:
    action_document = raw.get("Action") or {}
    action = next(iter(action_document), None)
    if action not in ("Block", "Allow", "Count"):
        raise NotEmulated(f"action {action}")
    custom = (action_document.get(action) or {}).get("CustomResponse") if action == "Block" else None
    return Rule(str(raw["Name"]), int(raw["Priority"]), action, _statement(raw.get("Statement") or {}, clock), custom)


def _statement(document: Mapping[str, Any], clock: Callable[[], float]) -> Statement:
    if len(document) != 1:
        raise NotEmulated("a statement must have exactly one kind")
    ((kind, body),) = document.items()
    if kind == "RateBasedStatement":
        return _rate_based(body, clock)
    if kind == "ByteMatchStatement":
        return _byte_match(body)
    if kind in ("AndStatement", "OrStatement"):
        parts = [_statement(item, clock) for item in body.get("Statements") or []]
        combine = all if kind == "AndStatement" else any
        return lambda request: combine(part(request) for part in parts)
    if kind == "NotStatement":
        inner = _statement(body.get("Statement") or {}, clock)
        return lambda request: not inner(request)
    raise NotEmulated(kind)


def _rate_based(body: Mapping[str, Any], clock: Callable[[], float]) -> Statement:
    aggregate = body.get("AggregateKeyType", "IP")
    if aggregate == "IP":

        def key_of(request: HttpRequest) -> str | None:
            return request.source_ip
    elif aggregate == "FORWARDED_IP":
        header = str((body.get("ForwardedIPConfig") or {}).get("HeaderName", "X-Forwarded-For"))

        def key_of(request: HttpRequest) -> str | None:
            value = request.header(header)
            return value.split(",")[0].strip() if value else None
    else:
        raise NotEmulated(f"AggregateKeyType {aggregate}")
    counter = RateCounter(int(body["Limit"]), float(body.get("EvaluationWindowSec", 300)), clock)
    scope = _statement(body["ScopeDownStatement"], clock) if body.get("ScopeDownStatement") else None

    def applies(request: HttpRequest) -> bool:
        key = key_of(request)
        if key is None or (scope is not None and not scope(request)):
            return False
        return counter.over_limit(key)

    return applies


def _byte_match(body: Mapping[str, Any]) -> Statement:
    target = body.get("FieldToMatch") or {}
    if "UriPath" in target:

        def field_of(request: HttpRequest) -> str:
            return request.raw_path
    elif "Method" in target:

        def field_of(request: HttpRequest) -> str:
            return request.method
    elif "QueryString" in target:

        def field_of(request: HttpRequest) -> str:
            return request.raw_query
    elif "SingleHeader" in target:
        name = str(target["SingleHeader"]["Name"])

        def field_of(request: HttpRequest) -> str:
            return request.header(name) or ""
    else:
        raise NotEmulated(f"FieldToMatch {next(iter(target), None)}")
    transformations = [
        str(item["Type"])
        for item in sorted(body.get("TextTransformations") or [], key=lambda item: int(item["Priority"]))
    ]
    unknown = set(transformations) - {"NONE", "URL_DECODE", "LOWERCASE"}
    if unknown:
        raise NotEmulated(f"text transformations {sorted(unknown)}")
    wanted = str(body["SearchString"])
    constraint = str(body["PositionalConstraint"])
    tests: dict[str, Callable[[str], bool]] = {
        "EXACTLY": lambda value: value == wanted,
        "STARTS_WITH": lambda value: value.startswith(wanted),
        "ENDS_WITH": lambda value: value.endswith(wanted),
        "CONTAINS": lambda value: wanted in value,
    }
    if constraint not in tests:
        raise NotEmulated(f"PositionalConstraint {constraint}")
    test = tests[constraint]

    def matches(request: HttpRequest) -> bool:
        value = field_of(request)
        for transformation in transformations:
            if transformation == "URL_DECODE":
                value = unquote_plus(value)
            elif transformation == "LOWERCASE":
                value = value.lower()
        return test(value)

    return matches


def _referenced(value: Any) -> str | None:
    found = _referenced_all(value)
    return found[0] if found else None


def _referenced_all(value: Any) -> list[str]:
    """Logical ids in a Ref, GetAtt or Sub (``${Api}``, ``${Api.Stage}``), in order."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.append(item.split(".")[0])
            elif key == "Fn::GetAtt":
                found.append(str(item[0] if isinstance(item, list) else item.split(".")[0]))
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                found.extend(name.split(".")[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", str(text)))
            else:
                found.extend(_referenced_all(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_referenced_all(item))
    return found
