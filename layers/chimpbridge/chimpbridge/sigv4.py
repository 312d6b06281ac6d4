"""AWS Signature Version 4 for the few JSON-protocol calls made on a request's hot path.

Why not boto3 here: importing boto3 and building one client costs more cold start than
everything else the signup handler loads (docs/benchmarks.md, "Shared layer"). A
single signed POST to Secrets Manager, or to DynamoDB for the signup limit, needs none of it
(aws_json.py sends and retries them). Everything else (SQS, DynamoDB, S3) still uses boto3,
imported lazily where it is needed.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def sign_json_request(
    *,
    url: str,
    service: str,
    region: str,
    target: str,
    body: bytes,
    access_key_id: str,
    secret_access_key: str,
    session_token: str | None = None,
    now: datetime | None = None,
    content_type: str = "application/x-amz-json-1.1",
) -> dict[str, str]:
    """Headers for a signed ``POST`` of an AWS JSON call (``X-Amz-Target: target``); DynamoDB
    speaks JSON 1.0, Secrets Manager 1.1."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    parts = urlsplit(url)
    headers = {
        "content-type": content_type,
        "host": parts.netloc,
        "x-amz-date": amz_date,
        "x-amz-target": target,
    }
    if session_token:
        headers["x-amz-security-token"] = session_token
    signed_names = ";".join(sorted(headers))
    canonical_request = "\n".join(
        [
            "POST",
            parts.path or "/",
            parts.query,
            "".join(f"{name}:{headers[name]}\n" for name in sorted(headers)),
            signed_names,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = _hmac(("AWS4" + secret_access_key).encode(), day)
    for step in (region, service, "aws4_request"):
        key = _hmac(key, step)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={signed_names}, Signature={signature}"
    )
    return headers
