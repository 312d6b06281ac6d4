"""pytest plugin: the retrying transport on a virtual clock, so a test never waits out a backoff.

``RetryingTransport`` takes its clock as a hook (``clock=``, the ``time`` module in production).
The ``virtual_clock`` fixture hands every transport the layer builds during the test a
:class:`VirtualClock` instead: a backoff passes at once but still moves the clock on, so the
retry budget and the invocation deadline run out exactly as they would in real time, and the
test can read the waits the transport asked for. Only the waits are virtual; requests, sockets
and the sandbox stay real.

A test whose point is what real waiting lets happen elsewhere (another worker's connection
freeing up while this one backs off) keeps the real clock: it does not ask for the fixture.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator

import pytest

from chimpbridge import clients, mailchimp_login, transport


class VirtualClock:
    """Real monotonic time plus the backoffs already "slept" on the calling thread.

    Each thread keeps its own lead, as threads that really slept side by side would: one record's
    backoff does not age another record's retry budget.
    """

    def __init__(self) -> None:
        self.slept: list[float] = []
        self._lock = threading.Lock()
        self._thread = threading.local()

    def monotonic(self) -> float:
        return time.monotonic() + getattr(self._thread, "lead", 0.0)

    def sleep(self, seconds: float, /) -> None:
        self._thread.lead = getattr(self._thread, "lead", 0.0) + seconds
        with self._lock:
            self.slept.append(seconds)


def _forget_transports() -> None:
    clients.clear()
    mailchimp_login.clear()


@pytest.fixture
def virtual_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualClock]:
    """Transports built from here to the end of the test back off on a :class:`VirtualClock`."""
    clock = VirtualClock()
    monkeypatch.setattr(clients, "RetryingTransport", functools.partial(transport.RetryingTransport, clock=clock))
    _forget_transports()
    yield clock
    # Cached clients hold the virtual clock: the next test builds its own.
    _forget_transports()
