"""One Logger, Tracer and Metrics for the whole bundle, and the handler decorator that wires
them (plus the invocation deadline) around every Lambda entry point.

Every log line passes through :func:`mask_emails`: an address in a message, an ``extra`` field
or an exception text comes out as ``j***@e***.com``. Nothing has to remember to mask.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from chimpbridge import settings, snapstart
from chimpbridge.deadline import invocation_deadline

__all__ = ["MetricUnit", "count", "instrument", "logger", "mask_emails", "metrics", "tracer"]

_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9])[A-Za-z0-9\-]*((?:\.[A-Za-z0-9\-]+)*)")


def mask_emails(text: str) -> str:
    """Keep the first letter of the local part and of the domain, and the domain's suffixes."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}***{m.group(3)}", text)


def _serialize_masked(record: dict[str, Any]) -> str:
    return mask_emails(json.dumps(record, default=str, separators=(",", ":"), ensure_ascii=False))


class LazyTracer:
    """Powertools' Tracer, built on first use and only while tracing is on.

    Building a Tracer imports the X-Ray SDK, and the X-Ray SDK imports botocore, both paid at
    cold start (docs/benchmarks.md, "Cold start of every function"). Where Powertools would not
    trace anyway (outside Lambda,
    under ``sam local``, or with POWERTOOLS_TRACE_DISABLED), nothing of it is imported.
    """

    def __init__(self, patch_modules: Sequence[str]) -> None:
        self._patch_modules = tuple(patch_modules)
        self._tracer: Tracer | None = None

    @property
    def enabled(self) -> bool:
        enabled: bool = settings.load(settings.TracingSettings).enabled
        return enabled

    def get(self) -> Tracer | None:
        """The Tracer, or None while tracing is off."""
        if self._tracer is None and self.enabled:
            self._tracer = Tracer(patch_modules=self._patch_modules)
        return self._tracer

    def patch(self, modules: Sequence[str]) -> None:
        tracer = self.get()
        if tracer is not None:
            tracer.patch(modules)


logger = Logger(json_serializer=_serialize_masked)
# Patch only requests (the SDK calls) up front; botocore is patched when dal.aws first builds a
# client, so tracing never imports boto3 on paths that do not use it.
tracer = LazyTracer(patch_modules=("requests",))
metrics = Metrics()

HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])


def count(name: str, value: float = 1) -> None:
    """One business metric per outcome (subscribed, queued, rejected, sent, ...)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def instrument(correlation_id_path: str | None = None) -> Callable[[HandlerT], HandlerT]:
    """Decorate a ``lambda_handler``: structured logs with the Lambda context (and a
    correlation id taken from the event), tracing without capturing responses, metrics
    flushed after each invocation, and retries bounded by the remaining time. Under SnapStart
    it also registers what a restored environment must redo (chimpbridge/snapstart.py)."""

    def decorate(handler: HandlerT) -> HandlerT:
        snapstart.register_restore_hooks()

        @functools.wraps(handler)
        def with_deadline(event: Any, context: Any) -> Any:
            with invocation_deadline(context):
                return handler(event, context)

        active = tracer.get()
        traced = (
            with_deadline if active is None else active.capture_lambda_handler(with_deadline, capture_response=False)
        )
        measured = metrics.log_metrics(traced, capture_cold_start_metric=True)
        logged = logger.inject_lambda_context(measured, correlation_id_path=correlation_id_path, clear_state=True)
        return functools.wraps(handler)(logged)  # type: ignore[return-value]

    return decorate
