"""Traffic accounting and injected faults: request and connection counters, the concurrency
cap (requests beyond it get 429, like Mailchimp's 10-connection limit), latency, errors and
timeouts."""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

API_NAMES = ("marketing", "transactional")
INJECTABLE_STATUSES = (408, 429, 500, 502, 503, 504)
DEFAULT_FAULT_STATUSES = (503,)
# Far longer than any sane client timeout (Mailchimp's SDK default is 120 s, ours are
# shorter); the server's stop() ends the wait early.
DEFAULT_TIMEOUT_SECONDS = 150.0


@dataclass(frozen=True)
class FaultSettings:
    error_rate: float = 0.0
    statuses: tuple[int, ...] = DEFAULT_FAULT_STATUSES
    latency_ms: float = 0.0
    max_connections: int | None = None
    timeout_rate: float = 0.0
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    apis: tuple[str, ...] = API_NAMES
    seed: int | None = None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> FaultSettings:
        """Validated settings from PUT /_sandbox/faults (``{}`` means no faults)."""
        unknown = set(body) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        settings = cls(
            error_rate=_fraction(body, "error_rate"),
            statuses=tuple(int(status) for status in body.get("statuses") or DEFAULT_FAULT_STATUSES),
            latency_ms=float(body.get("latency_ms") or 0),
            max_connections=None if body.get("max_connections") is None else int(body["max_connections"]),
            timeout_rate=_fraction(body, "timeout_rate"),
            timeout_seconds=float(body.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS),
            apis=tuple(body.get("apis") or API_NAMES),
            seed=None if body.get("seed") is None else int(body["seed"]),
        )
        if any(status not in INJECTABLE_STATUSES for status in settings.statuses):
            raise ValueError(f"statuses must be among {list(INJECTABLE_STATUSES)}")
        if settings.latency_ms < 0 or settings.timeout_seconds <= 0:
            raise ValueError("latency_ms and timeout_seconds must be positive")
        if settings.max_connections is not None and settings.max_connections < 1:
            raise ValueError("max_connections must be at least 1 (or null for no cap)")
        if any(api not in API_NAMES for api in settings.apis):
            raise ValueError(f"apis must be among {list(API_NAMES)}")
        return settings

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["statuses"] = list(self.statuses)
        document["apis"] = list(self.apis)
        return document


def _fraction(body: dict[str, Any], name: str) -> float:
    value = float(body.get(name) or 0)
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be between 0 and 1")
    return value


@dataclass
class ConnectionInfo:
    """Per TCP connection: which reset generation already counted it."""

    counted_in_generation: int = -1


@dataclass
class FaultDecision:
    status: int | None = None
    hang_seconds: float | None = None


@dataclass
class _Counters:
    requests: int = 0
    connections_opened: int = 0
    max_concurrent_requests: int = 0
    rejected_over_limit: int = 0
    faults_injected: int = 0
    responses_by_status: Counter[int] = field(default_factory=Counter)


class Traffic:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters = _Counters()
        self._generation = 0
        self._in_flight = 0
        self.faults = FaultSettings()
        self._rng = random.Random()
        self._held_requests_release = threading.Event()

    def reset(self) -> None:
        with self._lock:
            self._counters = _Counters()
            self._generation += 1
            self.faults = FaultSettings()
        # A request held by the timeout fault must not outlive the test that set the fault
        # (it would keep a slot of the next test's connection cap).
        self.release_held_requests()

    def release_held_requests(self) -> None:
        with self._lock:
            self._held_requests_release.set()
            self._held_requests_release = threading.Event()

    def hold(self, seconds: float) -> None:
        """Hold a request (the timeout fault) until ``seconds`` pass, the sandbox resets or stops."""
        with self._lock:
            release = self._held_requests_release
        release.wait(seconds)

    def set_faults(self, settings: FaultSettings) -> None:
        with self._lock:
            self.faults = settings
            self._rng = random.Random(settings.seed)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counters = self._counters
            return {
                "requests": counters.requests,
                "connections_opened": counters.connections_opened,
                "max_concurrent_requests": counters.max_concurrent_requests,
                "rejected_over_limit": counters.rejected_over_limit,
                "faults_injected": counters.faults_injected,
                "in_flight": self._in_flight,
                "responses_by_status": {str(k): v for k, v in sorted(counters.responses_by_status.items())},
            }

    def applies_to(self, api: str) -> bool:
        return api in self.faults.apis

    def admit(self, connection: ConnectionInfo, capped: bool) -> bool:
        """Count an API request and take a concurrency slot; False means over the cap."""
        with self._lock:
            counters = self._counters
            counters.requests += 1
            if connection.counted_in_generation != self._generation:
                connection.counted_in_generation = self._generation
                counters.connections_opened += 1
            cap = self.faults.max_connections if capped else None
            if cap is not None and self._in_flight >= cap:
                counters.rejected_over_limit += 1
                return False
            self._in_flight += 1
            counters.max_concurrent_requests = max(counters.max_concurrent_requests, self._in_flight)
            return True

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def draw_fault(self) -> FaultDecision:
        """Whether this request times out, fails, or goes through."""
        with self._lock:
            faults = self.faults
            if faults.timeout_rate and self._rng.random() < faults.timeout_rate:
                self._counters.faults_injected += 1
                return FaultDecision(hang_seconds=faults.timeout_seconds)
            if faults.error_rate and self._rng.random() < faults.error_rate:
                self._counters.faults_injected += 1
                return FaultDecision(status=self._rng.choice(faults.statuses))
            return FaultDecision()

    def record_response(self, status: int) -> None:
        with self._lock:
            self._counters.responses_by_status[status] += 1
