"""The invocation deadline: every retry loop stops in time for the handler to answer.

A handler runs inside :func:`invocation_deadline` (``observability.instrument`` does it); code
that waits on the network asks :func:`remaining_invocation_seconds` how long it may.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

# Time kept back from the Lambda deadline so the handler can still queue work and answer.
DEADLINE_MARGIN_SECONDS = 1.5


class LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


_deadline_lock = threading.Lock()
_invocation_deadline: float | None = None


@contextmanager
def invocation_deadline(context: LambdaContext | None) -> Iterator[None]:
    """Bound every retry loop by the invocation's remaining time while the handler runs.

    A module global rather than a context variable: Lambda runs one invocation per process at
    a time, and the export's worker threads must see the same deadline.
    """
    global _invocation_deadline  # noqa: PLW0603
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else None
    with _deadline_lock:
        _invocation_deadline = None if remaining is None else time.monotonic() + remaining
    try:
        yield
    finally:
        with _deadline_lock:
            _invocation_deadline = None


def remaining_invocation_seconds() -> float | None:
    """Seconds left before the invocation deadline (None outside an invocation)."""
    deadline = _invocation_deadline
    return None if deadline is None else deadline - time.monotonic()
