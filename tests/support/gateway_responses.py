"""template.yaml's GatewayResponses, and their templates rendered the way API Gateway renders a
gateway response: plain substitution of ``$context`` variables (no VTL), the headers of its
response parameters (single-quoted literals), its StatusCode."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from sandbox.stack.cfn_yaml import load_template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
# Every response type API Gateway has (GatewayResponse.responseType in its API reference).
RESPONSE_TYPES = [
    "DEFAULT_4XX",
    "DEFAULT_5XX",
    "RESOURCE_NOT_FOUND",
    "UNAUTHORIZED",
    "INVALID_API_KEY",
    "ACCESS_DENIED",
    "AUTHORIZER_FAILURE",
    "AUTHORIZER_CONFIGURATION_ERROR",
    "INVALID_SIGNATURE",
    "EXPIRED_TOKEN",
    "MISSING_AUTHENTICATION_TOKEN",
    "INTEGRATION_FAILURE",
    "INTEGRATION_TIMEOUT",
    "API_CONFIGURATION_ERROR",
    "UNSUPPORTED_MEDIA_TYPE",
    "BAD_REQUEST_PARAMETERS",
    "BAD_REQUEST_BODY",
    "REQUEST_TOO_LARGE",
    "THROTTLED",
    "QUOTA_EXCEEDED",
    "WAF_FILTERED",
]
_VARIABLE = re.compile(r"\$context\.[A-Za-z.]+")


@functools.cache
def gateway_responses() -> dict[str, Any]:
    return dict(load_template(TEMPLATE)["Resources"]["Api"]["Properties"]["GatewayResponses"])


def render(response_type: str, *, message: str, request_id: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    """(status, headers, parsed body) of the template's answer for ``response_type``."""
    response = gateway_responses()[response_type]
    values = {
        "$context.error.responseType": response_type,
        "$context.error.message": message,
        "$context.error.messageString": json.dumps(message),
        "$context.requestId": request_id,
    }
    text = _VARIABLE.sub(lambda match: values[match.group(0)], response["ResponseTemplates"]["application/json"])
    headers = {name: value.strip("'") for name, value in response["ResponseParameters"]["Headers"].items()}
    return int(response["StatusCode"]), headers, json.loads(text)
