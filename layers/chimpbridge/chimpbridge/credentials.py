"""The execution role's credentials for the one AWS call the layer signs itself (sigv4.py).

Lambda normally puts them in the environment (``AWS_ACCESS_KEY_ID`` and friends). Under
SnapStart it does not: an environment restored from a snapshot can outlive keys written at
init, so Lambda serves them from a local endpoint instead (``AWS_CONTAINER_CREDENTIALS_FULL_URI``
with ``AWS_CONTAINER_AUTHORIZATION_TOKEN``, the SDKs' container credential provider). Keys read
there are kept until shortly before they expire. With neither, :func:`current` answers None
and the caller falls back to boto3's full credential chain (docs/snapstart.md).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

import urllib3

from chimpbridge import settings
from chimpbridge.errors import UpstreamError

# Read again this long before the served keys expire, so no request is signed with keys that
# lapse while it is in flight.
REFRESH_BEFORE_EXPIRY_SECONDS = 300
CONNECT_TIMEOUT_SECONDS = 1.0
READ_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Credentials:
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None  # unix seconds; None: as long as the environment lives

    def fresh(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at - REFRESH_BEFORE_EXPIRY_SECONDS


_lock = threading.Lock()
_served: Credentials | None = None
_http: urllib3.PoolManager | None = None


def current(aws: settings.AwsSettings) -> Credentials | None:
    """The environment's keys if it has them, else the container endpoint's (cached), else None."""
    if aws.access_key_id and aws.secret_access_key:
        return Credentials(aws.access_key_id, aws.secret_access_key, aws.session_token)
    if not aws.container_credentials_uri:
        return None
    global _served  # noqa: PLW0603
    with _lock:
        if _served is None or not _served.fresh(time.time()):
            _served = _fetch(aws.container_credentials_uri, aws.container_authorization_token)
        return _served


def forget() -> None:
    """Drop served keys and the connection to the endpoint (tests; after a SnapStart restore)."""
    global _served, _http  # noqa: PLW0603
    with _lock:
        _served = None
        if _http is not None:
            _http.clear()
        _http = None


def _fetch(uri: str, token: str | None) -> Credentials:
    global _http  # noqa: PLW0603
    if _http is None:
        _http = urllib3.PoolManager(num_pools=1, maxsize=1)
    headers = {"Authorization": token} if token else {}
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS)
    try:
        response = _http.request("GET", uri, headers=headers, retries=False, timeout=timeout)
    except urllib3.exceptions.HTTPError as exc:
        raise UpstreamError("credentials", None, type(exc).__name__) from None
    try:
        payload = json.loads(response.data or b"{}")
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or response.status != 200:
        raise UpstreamError("credentials", response.status, "no credentials in the answer")
    key_id, secret, token_value = payload.get("AccessKeyId"), payload.get("SecretAccessKey"), payload.get("Token")
    if not (isinstance(key_id, str) and key_id and isinstance(secret, str) and secret):
        raise UpstreamError("credentials", response.status, "no credentials in the answer")
    return Credentials(
        key_id,
        secret,
        token_value if isinstance(token_value, str) and token_value else None,
        _expiry(payload.get("Expiration")),
    )


def _expiry(value: object) -> float:
    """``Expiration`` (ISO 8601) as unix seconds; unreadable: soon, so the keys are read again."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return moment.timestamp()
    return time.time() + REFRESH_BEFORE_EXPIRY_SECONDS + 60
