"""HTTP transport for the Mailchimp SDKs: one pooled keep-alive session per client, explicit
timeouts, and bounded retries.

The official SDKs call module-level ``requests.get/post`` (a new TCP and TLS connection per
call) with no retries. Our clients route every call through :class:`RetryingTransport`
instead. Retries use exponential backoff with full jitter, honour ``Retry-After``, and never
outlive the invocation: each call gets a budget, cut short by the Lambda deadline.
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from chimpbridge.deadline import DEADLINE_MARGIN_SECONDS, remaining_invocation_seconds
from chimpbridge.errors import TRANSIENT_CLIENT_STATUSES, is_transient_status

# Methods that are safe to send twice after an ambiguous failure (a read timeout).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})


class Clock(Protocol):
    """What the retry loop waits on and measures its budget with: the ``time`` module itself, or
    a test's virtual clock, whose ``sleep`` moves its ``monotonic`` on without waiting."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float, /) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    budget_seconds: float = 8.0
    base_delay: float = 0.2
    max_delay: float = 5.0

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full-jitter exponential delay before attempt ``attempt + 1``; Retry-After wins if longer."""
        delay = random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))  # noqa: S311
        return max(delay, retry_after or 0.0)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def may_have_reached_server(error: BaseException) -> bool:
    """Whether a failed request may have been received (and acted on) by the server: anything
    but a connection that was never established."""
    if isinstance(error, requests.ConnectTimeout):
        return False
    cause = error.args[0] if error.args else None
    cause = getattr(cause, "reason", cause)  # requests wraps urllib3's MaxRetryError(reason=...)
    return not isinstance(cause, NewConnectionError)


class RetryingTransport:
    """A keep-alive connection pool with timeouts and a retry loop around each request."""

    def __init__(
        self,
        *,
        pool_size: int,
        connect_timeout: float,
        read_timeout: float,
        policy: RetryPolicy,
        user_agent: str,
        clock: Clock = time,
        on_retry: Callable[[str, int | None], None] | None = None,
    ) -> None:
        self.session = requests.Session()
        # pool_block: the pool size is a hard cap on connections (this function's share of the
        # account's budget, settings.MAILCHIMP_CONNECTIONS_PER_ACCOUNT); extra threads wait.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0, pool_block=True)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = user_agent
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.policy = policy
        self.clock = clock
        self._on_retry = on_retry
        # Retries so far, across threads (progress metrics read it).
        self.retries = 0
        self._retries_lock = threading.Lock()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        data: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> requests.Response:
        """Send with retries; return the final response, or raise the final connection failure.

        Idempotent methods are repeated after 408, 429, 5xx, timeouts and connection errors. Others
        (POST: a Mandrill send) only when the request cannot have been acted on: a 408 (the
        server gave up reading it), a 429, or a connection that never opened. A 5xx, a read
        timeout or a dropped connection may follow a send that happened, so it goes back to the
        caller at once (``UpstreamError.answer_lost`` tells the caller the difference).

        Waiting for a POST's answer is never cut short by the retry budget, only by the
        invocation deadline, and a POST is repeated only while its whole wait (connect + read
        timeout) still fits before the deadline: a send whose wait is cut short is a lost answer.
        """
        started = self.clock.monotonic()
        remaining = remaining_invocation_seconds()
        deadline = math.inf if remaining is None else started + remaining - DEADLINE_MARGIN_SECONDS
        stop_at = min(started + self.policy.budget_seconds, deadline)
        idempotent = method.upper() in IDEMPOTENT_METHODS
        full_wait = self.connect_timeout + self.read_timeout

        attempt = 0
        while True:
            attempt += 1
            wait_until = stop_at if idempotent else deadline
            read_timeout = max(0.5, min(self.read_timeout, wait_until - self.clock.monotonic()))
            failure: requests.RequestException | None = None
            retry_after: float | None = None
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    auth=auth,
                    timeout=(self.connect_timeout, read_timeout),
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if not idempotent and may_have_reached_server(exc):
                    raise
                failure = exc
            else:
                status = response.status_code
                if not is_transient_status(status) or (not idempotent and status not in TRANSIENT_CLIENT_STATUSES):
                    return response
                retry_after = parse_retry_after(response.headers.get("Retry-After"))

            delay = self.policy.backoff(attempt, retry_after)
            out_of_attempts = attempt >= self.policy.max_attempts
            cut_short = not idempotent and self.clock.monotonic() + delay + full_wait > deadline
            if out_of_attempts or cut_short or self.clock.monotonic() + delay >= stop_at:
                if failure is not None:
                    raise failure
                return response
            with self._retries_lock:
                self.retries += 1
            if self._on_retry is not None:
                self._on_retry(url, None if failure is not None else response.status_code)
            self.clock.sleep(delay)
