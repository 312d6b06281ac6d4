"""What ``make dev`` prints: the addresses, a ready-to-paste curl per route, what runs where."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sandbox.stack.resources import EVENT_BUS, EVENT_RULE
from sandbox.stack.stack import LocalStack
from sandbox.stack.template import ApiRoute, FunctionSpec

# Headers API Gateway, CloudFront or the client add by themselves: not worth pasting.
_INFRASTRUCTURE_HEADERS = re.compile(
    r"^(host|content-length|accept(-.*)?|user-agent|cache-control|connection|via|upgrade-insecure-requests"
    r"|x-forwarded-.*|cloudfront-.*|x-amz-.*|x-amzn-.*)$",
    re.IGNORECASE,
)
_NEGATIVE_SAMPLE = re.compile(r"wrong|invalid|error|bad|fail|reject", re.IGNORECASE)


def _sample_event(events_dir: Path, spec: FunctionSpec | None, route: ApiRoute) -> dict[str, Any] | None:
    """An events/<function-folder>/*.json proxy event for this route, if the feature ships one;
    a happy-path sample rather than one that shows a rejection."""
    if spec is None or not (events_dir / spec.code_dir.name).is_dir():
        return None
    paths = (events_dir / spec.code_dir.name).glob("*.json")
    for path in sorted(paths, key=lambda item: (bool(_NEGATIVE_SAMPLE.search(item.stem)), item.name)):
        try:
            event = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        method_matches = route.method in ("ANY", str(event.get("httpMethod", "")).upper())
        if method_matches and event.get("resource") == route.path:
            return event
    return None


def curl_command(api_url: str, route: ApiRoute, sample: dict[str, Any] | None) -> str:
    method = "GET" if route.method == "ANY" else route.method
    path = re.sub(r"\{[^}]+\}", "example", route.path)
    arguments = ["curl", "-i"]
    if method != "GET":
        arguments += ["-X", method]
    body: str | None = None
    headers: dict[str, str] = {}
    if sample is not None:
        path = str(sample.get("path") or path)
        query = sample.get("queryStringParameters") or {}
        if query:
            path += "?" + urlencode(query)
        if sample.get("body") and not sample.get("isBase64Encoded"):
            body = str(sample["body"])
        headers = {
            str(name): str(value)
            for name, value in (sample.get("headers") or {}).items()
            if not _INFRASTRUCTURE_HEADERS.match(str(name))
        }
    elif method in ("POST", "PUT", "PATCH"):
        body, headers = "{}", {"Content-Type": "application/json"}
    arguments.append(api_url + path)
    for name, value in headers.items():
        arguments += ["-H", f"{name}: {value}"]
    if body is not None:
        arguments += ["--data", body]
    return shlex.join(arguments)


def banner(stack: LocalStack, events_dir: Path, startup_seconds: float) -> str:
    application = stack.application
    lines = [
        f"chimpbridge local stack is up ({startup_seconds:.1f} s) - template {stack.template.path.name}",
        "",
        f"  API (API Gateway REST)   {stack.api_url}",
        f"  Mailchimp sandbox        {stack.sandbox_url or '(not started)'}",
        f"  AWS (moto)               {stack.moto_url}",
        "",
        "Routes:",
    ]
    for route in sorted(application.routes, key=lambda item: (item.path, item.method)):
        spec = application.functions.get(route.function_id)
        lines.append(f"  {route.method:7} {route.path:32} -> {route.function_id}")
        lines.append(f"      {curl_command(str(stack.api_url), route, _sample_event(events_dir, spec, route))}")
    if not application.routes:
        lines.append("  (none in the template yet)")
    if application.sqs_sources:
        lines += ["", "Queues polled:"]
        for source in application.sqs_sources:
            queue = stack.resource(source.queue_logical_id)
            lines.append(f"  {source.queue_logical_id} -> {source.function_id} (batch {source.batch_size}) {queue.url}")
    lines += _event_bus_lines(stack)
    if stack.notes:
        lines += ["", "Not emulated:"] + [f"  {note}" for note in stack.notes]
    lines += [
        "",
        "Run any function:    make invoke FN=<LogicalId> EVENT=events/<folder>/<case>.json",
        "Look into AWS:       export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
        " AWS_DEFAULT_REGION=us-east-1",
        f"                     aws --endpoint-url {stack.moto_url} sqs list-queues",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def _event_bus_lines(stack: LocalStack) -> list[str]:
    """Each bus with the queue its published events are copied to, and its rules' targets."""
    buses = stack.template.resources_of_type(EVENT_BUS)
    if not buses:
        return []
    lines = ["", "Event buses (every published event is also copied to the queue shown):"]
    rules = stack.template.resources_of_type(EVENT_RULE)
    for logical_id in sorted(buses):
        bus = stack.resource(logical_id)
        tap = bus.attributes.get("TapQueueUrl", "")
        lines.append(f"  {logical_id} {bus.name}  {tap}")
        for rule_id, rule in sorted(rules.items()):
            properties = rule.get("Properties") or {}
            if properties.get("EventBusName") not in ({"Ref": logical_id}, bus.name):
                continue
            targets = [_target_name(target) for target in properties.get("Targets") or []]
            state = stack.resources.resolver.resolve(properties.get("State", "ENABLED")) if stack.resources else "?"
            lines.append(f"    rule {rule_id} ({state}) -> {', '.join(targets) or '(no targets)'}")
        if tap:
            lines.append(
                f"    see them: aws --endpoint-url {stack.moto_url} sqs receive-message --max-number-of-messages 10"
                f" --queue-url {tap}"
            )
    return lines


def _target_name(target: Any) -> str:
    arn = target.get("Arn") if isinstance(target, dict) else None
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:
        attribute = arn["Fn::GetAtt"]
        return str(attribute[0] if isinstance(attribute, list) else str(attribute).split(".")[0])
    return str(target.get("Id", "?")) if isinstance(target, dict) else "?"
