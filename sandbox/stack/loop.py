"""The export state machine's loop, locally. Not a state-machine interpreter: only the
one contract the template's state machines use, "call the function again with its own result
while the result says ``{"done": false}``".

In AWS, Step Functions does this (statemachine/audience_export.asl.json); here ``make invoke``
does it, so ``make invoke FN=AudienceExportFunction EVENT=events/audience_export/full.json``
runs an export to the end however many invocations it takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

MAX_INVOCATIONS = 10_000
BUSY_WAIT_SECONDS = 60.0


def wants_another_invocation(result: Any) -> bool:
    return isinstance(result, dict) and result.get("done") is False


def invoke_until_done(
    invoke: Callable[[Any], Any],
    event: Any,
    *,
    on_continue: Callable[[int, Any], None] | None = None,
    max_invocations: int = MAX_INVOCATIONS,
) -> Any:
    """``invoke(event)``, then ``invoke(result)`` while the result is not done; the last result."""
    result = invoke(event)
    invocations = 1
    while wants_another_invocation(result):
        if invocations >= max_invocations:
            raise RuntimeError(f"still not done after {invocations} invocations")
        if on_continue is not None:
            on_continue(invocations, result)
        result = invoke(result)
        invocations += 1
    return result


def busy(error: BaseException) -> bool:
    """Whether a function's error says another run holds what it needs (ImportBusy, ExportBusy):
    the state machines wait and call again."""
    payload = getattr(getattr(error, "result", None), "payload", None) or {}
    return isinstance(payload, dict) and str(payload.get("errorType", "")).endswith("Busy")


def waiting_while_busy(call: Callable[[], Any], *, wait_seconds: float = BUSY_WAIT_SECONDS) -> Any:
    """``call()``, called again every 2 s while it fails with a busy error, for up to
    ``wait_seconds``. With `make dev` running, an upload is imported by the stack itself, so a
    `make invoke` of the same upload waits for that run and then reports it."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return call()
        except Exception as error:
            if not busy(error) or time.monotonic() > deadline:
                raise
            time.sleep(2)
