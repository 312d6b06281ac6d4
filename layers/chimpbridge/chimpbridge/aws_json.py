"""One signed POST of an AWS JSON-protocol call, retried on throttling and server errors and
never past the invocation's deadline: how the request path reads Secrets Manager (secrets.py)
and counts signups in DynamoDB (dal/signup_limits.py) without boto3 (sigv4.py says why).

A request path must still have time to queue its work and answer, so each attempt gets what is
left of the invocation less a margin, and none starts once too little is left. What an answer
means (a secret, a failed condition, a refusal) is the caller's; this module only tells a
final answer from one worth another try.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import urllib3

from chimpbridge import sigv4
from chimpbridge.credentials import Credentials
from chimpbridge.deadline import DEADLINE_MARGIN_SECONDS, remaining_invocation_seconds
from chimpbridge.errors import UpstreamError, is_transient_status


@dataclass(frozen=True, kw_only=True)
class JsonApi:
    """One AWS JSON API as the request path calls it."""

    service: str  # the signing name, also the service an UpstreamError names
    content_type: str = "application/x-amz-json-1.1"
    attempts: int = 3
    connect_timeout: float
    read_timeout: float
    min_budget: float  # seconds: no attempt starts with less left than this
    backoff: float  # seconds after the first failed attempt, doubled after each one
    throttled: frozenset[str]  # error types (``__type``) worth another try whatever the status
    unnamed_error: str  # the summary of a retried failure whose answer names no error type


@dataclass(frozen=True)
class Answer:
    """An answer that another try would not change: a success, or a final refusal."""

    status: int
    payload: dict[str, Any]

    @property
    def error_type(self) -> str:
        """``__type`` without its namespace (``ConditionalCheckFailedException``), or ``""``."""
        return str(self.payload.get("__type", "")).rsplit("#", 1)[-1]


def call(
    http: urllib3.PoolManager,
    api: JsonApi,
    *,
    url: str,
    region: str,
    target: str,
    body: bytes,
    keys: Credentials,
) -> Answer:
    """POST ``body`` as ``target``; the first answer not worth retrying. Raises
    :class:`UpstreamError` when every attempt failed for a reason that may pass, or when the
    invocation had no time left for one."""
    failure = UpstreamError(api.service, None, "no time left in the invocation")
    for attempt in range(api.attempts):
        remaining = remaining_invocation_seconds()
        budget = api.read_timeout if remaining is None else remaining - DEADLINE_MARGIN_SECONDS
        if budget < api.min_budget:
            break
        headers = sigv4.sign_json_request(
            url=url,
            service=api.service,
            region=region,
            target=target,
            body=body,
            access_key_id=keys.access_key_id,
            secret_access_key=keys.secret_access_key,
            session_token=keys.session_token,
            content_type=api.content_type,
        )
        timeout = urllib3.Timeout(connect=min(api.connect_timeout, budget), read=min(api.read_timeout, budget))
        try:
            response = http.request("POST", url, body=body, headers=headers, retries=False, timeout=timeout)
        except urllib3.exceptions.HTTPError as exc:
            failure = UpstreamError(api.service, None, type(exc).__name__)
        else:
            answer = Answer(response.status, json_object(response.data))
            if response.status == 200:
                return answer
            if not (answer.error_type in api.throttled or is_transient_status(response.status)):
                return answer
            failure = UpstreamError(api.service, response.status, answer.error_type or api.unnamed_error)
        time.sleep(api.backoff * 2**attempt)
    raise failure


def regional_url(endpoint: str, region: str) -> str:
    """The regional endpoint of a service; China's regions are under amazonaws.com.cn."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{endpoint}.{region}.{suffix}"


def json_object(data: bytes) -> dict[str, Any]:
    """The body as a JSON object; ``{}`` for anything else (an empty body, a proxy's HTML)."""
    try:
        parsed = json.loads(data or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
