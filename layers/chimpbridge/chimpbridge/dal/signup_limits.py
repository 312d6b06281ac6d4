"""How many signups one address made in the last day, counted in the state table.

Item ``signup-limit#<sha256 of the address' mailbox>`` / ``window``: ``sends`` (unix seconds of
the signups counted, oldest first, at most the limit), ``version`` (for the conditional write)
and ``expires_at`` (TTL: a window after the newest). The address itself is not stored.

A sliding window: never more than ``limit`` signups in any ``window_seconds``, however they are
spread (a fixed daily bucket would let twice the limit through around its boundary). An address
not seen within the window, the common case, costs one conditional ``PutItem``; a known one a
consistent ``GetItem`` and a ``PutItem`` conditional on the version it read.

This runs on every signup, so DynamoDB is called with one signed HTTP request (sigv4.py), as the
secrets are read: boto3 would lengthen the signup function's cold start (docs/benchmarks.md,
"Cold start of every function"). Without keys in the environment (a developer's shell) boto3's
credential chain takes over, with the same request documents.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import urllib3

from chimpbridge import aws_json, credentials, settings
from chimpbridge.errors import UpstreamError

DAY_SECONDS = 86_400
SORT_KEY = "window"
WRITE_CONFLICTS = 4  # concurrent signups of one address, each re-reads once
CONFLICT_RETRY_AFTER_SECONDS = 60
_CONDITION_FAILED = "ConditionalCheckFailedException"
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
_http: urllib3.PoolManager | None = None
DYNAMODB = aws_json.JsonApi(
    service="dynamodb",
    content_type="application/x-amz-json-1.0",
    connect_timeout=1.0,
    read_timeout=2.0,
    min_budget=0.2,
    backoff=0.05,
    throttled=frozenset({"ThrottlingException", "ProvisionedThroughputExceededException"}),
    unnamed_error="error",
)


def mailbox(email: str) -> str:
    """The mailbox an address delivers to, as far as it can be told from the address: lower-cased,
    without a ``+tag`` (most providers deliver ``ann+1@`` to ``ann@``), and for Gmail without dots.
    Otherwise a script could mail one inbox without end through its aliases."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def reset() -> None:
    """Drop the pooled connection (after a SnapStart restore: chimpbridge/snapstart.py)."""
    global _http  # noqa: PLW0603
    if _http is not None:
        _http.clear()
    _http = None


def address_key(email: str) -> dict[str, Any]:
    digest = hashlib.sha256(mailbox(email).encode("utf-8")).hexdigest()
    return {"pk": {"S": f"signup-limit#{digest}"}, "sk": {"S": SORT_KEY}}


def take(table: str, email: str, *, limit: int, window_seconds: int = DAY_SECONDS, now: float | None = None) -> int:
    """Count one signup of ``email`` if fewer than ``limit`` were counted in the window: returns
    0 then, else the seconds until one more would be allowed (nothing is counted).
    Raises ``UpstreamError`` when DynamoDB cannot be asked."""
    moment = int(time.time() if now is None else now)
    key = address_key(email)
    fresh = _item(key, [moment], version=1, expires_at=moment + window_seconds)
    if _put(table, fresh, "attribute_not_exists(pk) OR expires_at < :now", {":now": _number(moment)}):
        return 0
    for _ in range(WRITE_CONFLICTS):
        item = _get(table, key)
        if item is None:  # expired and removed meanwhile
            if _put(table, fresh, "attribute_not_exists(pk)", None):
                return 0
            continue
        counted = sorted(int(entry["N"]) for entry in item.get("sends", {}).get("L", []))
        recent = [sent for sent in counted if sent > moment - window_seconds]
        if len(recent) >= limit:
            # Allowed again once the oldest signup that keeps the count at the limit leaves the window.
            return max(1, recent[len(recent) - limit] + window_seconds - moment)
        version = int(item.get("version", {}).get("N", "0"))
        updated = _item(key, [*recent, moment][-limit:], version=version + 1, expires_at=moment + window_seconds)
        if _put(table, updated, "version = :version", {":version": _number(version)}):
            return 0
    return CONFLICT_RETRY_AFTER_SECONDS  # the address is being signed up many times at once


def _item(key: dict[str, Any], sends: list[int], *, version: int, expires_at: int) -> dict[str, Any]:
    return {
        **key,
        "sends": {"L": [_number(sent) for sent in sends]},
        "version": _number(version),
        "expires_at": _number(expires_at),
    }


def _number(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _put(table: str, item: dict[str, Any], condition: str, values: dict[str, Any] | None) -> bool:
    """A conditional PutItem; False when the condition did not hold."""
    request: dict[str, Any] = {"TableName": table, "Item": item, "ConditionExpression": condition}
    if values:
        request["ExpressionAttributeValues"] = values
    return _call("PutItem", request) is not None


def _get(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    answer = _call("GetItem", {"TableName": table, "Key": key, "ConsistentRead": True})
    item = (answer or {}).get("Item")
    return item if isinstance(item, dict) else None


def _call(operation: str, request: dict[str, Any]) -> dict[str, Any] | None:
    """One DynamoDB call (aws_json.py: retried, and never past the invocation deadline); None
    when its condition failed."""
    aws = settings.load(settings.AwsSettings)
    keys = credentials.current(aws)
    if keys is None:
        return _call_with_boto3(operation, request)
    global _http  # noqa: PLW0603
    if _http is None:
        _http = urllib3.PoolManager(num_pools=1, maxsize=2)
    answer = aws_json.call(
        _http,
        DYNAMODB,
        url=aws.endpoint_url or aws_json.regional_url("dynamodb", aws.region),
        region=aws.region,
        target=f"DynamoDB_20120810.{operation}",
        body=json.dumps(request, separators=(",", ":")).encode(),
        keys=keys,
    )
    if answer.status == 200:
        return answer.payload
    if answer.error_type == _CONDITION_FAILED:
        return None
    raise UpstreamError("dynamodb", answer.status, answer.error_type or "error")


def _call_with_boto3(operation: str, request: dict[str, Any]) -> dict[str, Any] | None:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - rare path: see docstring

    from chimpbridge.dal import aws  # noqa: PLC0415

    method = getattr(aws.dynamodb(prompt=True), "put_item" if operation == "PutItem" else "get_item")
    try:
        return dict(method(**request))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == _CONDITION_FAILED:
            return None
        raise UpstreamError("dynamodb", exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"), code) from None
    except BotoCoreError as exc:
        raise UpstreamError("dynamodb", None, type(exc).__name__) from None
