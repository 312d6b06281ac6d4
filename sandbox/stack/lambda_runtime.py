"""One local Lambda execution environment: the bootstrap a worker subprocess runs.

Started by ``workers.py`` as ``python -I -u lambda_runtime.py --request-fd N --response-fd M
--task-root DIR [--layer DIR ...]`` with the function's environment. Like Lambda's Python
bootstrap it puts the task root, then the layers, at the front of ``sys.path`` (the one place
where a path edit is the point), imports the handler on the first invocation and keeps it warm.
Requests and responses are JSON lines on their own pipes, so the function's stdout and stderr
stay free for its logs. Standard library only: nothing from the repository is importable here,
as in Lambda.
"""

from __future__ import annotations

import argparse
import decimal
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO


class LambdaContext:
    """The attributes and method of Lambda's Python context object."""

    def __init__(self, request_id: str, invoked_function_arn: str, deadline_epoch_ms: int) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_epoch_ms = deadline_epoch_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_epoch_ms - int(time.time() * 1000), 0)


def _error(error_type: str, message: str, stack_trace: list[str] | None = None) -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "stackTrace": stack_trace or []}


def _exception_error(error: BaseException, skip_frames: int = 1) -> dict[str, Any]:
    frames = traceback.extract_tb(error.__traceback__)[skip_frames:]
    return _error(type(error).__name__, str(error), traceback.format_list(frames))


def _load_handler(handler_spec: str) -> Callable[[Any, LambdaContext], Any] | dict[str, Any]:
    """Import ``module.function`` as Lambda does, or return the error Lambda would report."""
    module_name, _, function_name = handler_spec.rpartition(".")
    if not module_name:
        return _error("Runtime.MalformedHandlerName", f"Bad handler '{handler_spec}': not enough values to unpack")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as error:
        return _error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}")
    except Exception as error:  # noqa: BLE001 - init errors are reported to the caller, like Lambda does
        return _exception_error(error, skip_frames=0)
    handler = getattr(module, function_name, None)
    if handler is None:
        return _error(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        )
    return handler  # type: ignore[no-any-return]  # whatever the module defines is the handler


def _json_default(value: Any) -> Any:
    # Lambda's runtime serialises Decimal (DynamoDB numbers) instead of failing on it.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _write(stream: BinaryIO, message: dict[str, Any]) -> None:
    stream.write(json.dumps(message, default=_json_default).encode() + b"\n")
    stream.flush()


def serve(requests: BinaryIO, responses: BinaryIO, handler_spec: str) -> int:
    handler: Callable[[Any, LambdaContext], Any] | None = None
    for line in requests:
        request = json.loads(line)
        if handler is None:
            loaded = _load_handler(handler_spec)
            if isinstance(loaded, dict):
                # A failed init ends this environment; the next invocation starts a fresh one.
                _write(responses, {"ok": False, "error": loaded, "init_failed": True})
                return 1
            handler = loaded
        context = LambdaContext(request["request_id"], request["invoked_function_arn"], request["deadline_epoch_ms"])
        try:
            result = handler(request["event"], context)
        except Exception as error:  # noqa: BLE001 - an unhandled error is the function's result
            error_payload = _exception_error(error)
            sys.stderr.write(
                f"[ERROR] {error_payload['errorType']}: {error_payload['errorMessage']}\n"
                + "".join(traceback.format_exception(error))
            )
            sys.stderr.flush()
            _write(responses, {"ok": False, "error": error_payload})
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            _write(responses, {"ok": True, "result": result})
        except (TypeError, ValueError) as error:
            _write(
                responses,
                {"ok": False, "error": _error("Runtime.MarshalError", f"Unable to marshal response: {error}")},
            )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--request-fd", type=int, required=True)
    parser.add_argument("--response-fd", type=int, required=True)
    parser.add_argument("--task-root", required=True)
    parser.add_argument("--layer", action="append", default=[])
    arguments = parser.parse_args()
    sys.path[0:0] = [arguments.task_root, *arguments.layer]
    os.chdir(arguments.task_root)
    with (
        os.fdopen(arguments.request_fd, "rb") as requests,
        os.fdopen(arguments.response_fd, "wb") as responses,
    ):
        return serve(requests, responses, os.environ["_HANDLER"])


if __name__ == "__main__":
    sys.exit(main())
