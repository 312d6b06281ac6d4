"""One Logger, Tracer and Metrics for the whole bundle, and the handler decorator that wires
them (plus the invocation deadline) around every Lambda entry point.

Every log line passes through :func:`mask_emails`: an address in a message, an ``extra`` field
(keys too) or an exception text comes out as ``j***@e***.com``. Nothing has to remember to mask.
Mailchimp's subscriber hash (the MD5 of the address: a known address is one lookup away) never
reaches a log either: a member path shows as ``members/{subscriber_hash}``, and fields that hold
an address hash are redacted by name.
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

# A local part is any run of characters that can stand in one (RFC 5322 atext and dots, and any
# non-ASCII character, as SMTPUTF8 allows): everything but whitespace, controls, "@" and the
# characters that delimit an address in text. Masking more than an address is harmless; less is
# a leak, so the run is as wide as it can be.
_LOCAL_CHAR = r"[^\s\x00-\x1f\x7f@\"(),:;<>\[\]]"
# A domain label: letters of any script (with combining marks), digits, "-" and "_".
_LABEL = r"[^\s\x00-\x1f\x7f@\"'`(),:;<>\[\]\\/.!?&=%#*+{}|^~$]+"
# In a URL (``?email=jane%40example.com``) the address is one percent-encoded value.
_QUERY_CHAR = r"[^\s\x00-\x1f\x7f@\"(),:;<>\[\]/?&=#]"
_EMAIL = re.compile(
    rf"(?:(?<!{_LOCAL_CHAR})(?P<local>{_LOCAL_CHAR}+)@|(?<!{_QUERY_CHAR})(?P<encoded>{_QUERY_CHAR}+)%40)"
    rf"(?:(?P<host>{_LABEL}(?:\.{_LABEL})*)|\[[^\]\s]*\])"
)
# The member segment of a Marketing API path: /lists/{list_id}/members/{md5 of the address}.
_MEMBER_PATH = re.compile(r"(members/)[0-9a-f]{32}(?![0-9a-f])", re.IGNORECASE)
# Fields whose value is a hash of an address, whatever line they are in.
_ADDRESS_HASH_FIELDS = frozenset({"subscriber_hash", "old_subscriber_hash", "recipient_hash", "address_hash"})


def _mask_address(match: re.Match[str]) -> str:
    first = (match.group("local") or match.group("encoded"))[0]
    host = match.group("host")
    if host is None:
        return f"{first}***@[***]"
    suffix = "." + host.rsplit(".", 1)[1] if "." in host else ""
    return f"{first}***@{host[0]}***{suffix}"


def mask_emails(text: str) -> str:
    """Every address, whatever its characters, as its first character, ``***@``, the domain's
    first character, ``***`` and the top-level domain: ``j***@e***.com``. Member paths lose
    their subscriber hash."""
    if "@" in text or "%40" in text:
        text = _EMAIL.sub(_mask_address, text)
    if "members/" in text:
        text = _MEMBER_PATH.sub(r"\1{subscriber_hash}", text)
    return text


def _masked(value: Any) -> Any:
    """``value`` with every string in it masked (before it is serialized: a JSON escape must
    never split an address, nor a mask split an escape)."""
    if isinstance(value, str):
        return mask_emails(value)
    if isinstance(value, dict):
        return {
            _masked(key): "<redacted>" if key in _ADDRESS_HASH_FIELDS else _masked(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


def _serialize_masked(record: dict[str, Any]) -> str:
    return json.dumps(
        _masked(record), default=lambda value: mask_emails(str(value)), separators=(",", ":"), ensure_ascii=False
    )


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
