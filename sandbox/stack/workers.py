"""Pools of long-lived worker subprocesses, one pool per function: local execution environments.

A subprocess per environment is what keeps functions apart: two functions that both have an
``app.py`` never share ``sys.modules``, and each has its own ``os.environ``. Workers are
spawned on demand up to a cap and reused warm, as Lambda reuses execution environments; one
that times out or crashes is discarded, as Lambda discards it.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sandbox.stack.intrinsics import LOCAL_ACCOUNT_ID, LOCAL_REGION
from sandbox.stack.template import FunctionSpec

LogSink = Callable[[str, str], None]  # (function logical id, one log line)
RUNTIME_SCRIPT = Path(__file__).with_name("lambda_runtime.py")
DEFAULT_MAX_WORKERS = 4


def console_log_sink(function_id: str, line: str) -> None:
    sys.stderr.write(f"[{function_id}] {line}\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class InvocationResult:
    request_id: str
    payload: Any  # the handler's return value, or Lambda's error object when error is set
    error: bool
    duration_ms: float
    cold_start: bool
    # Not run: the function's reserved concurrency was in use (Lambda's TooManyRequestsException).
    throttled: bool = False


class FunctionError(RuntimeError):
    """The function ended with an unhandled error (as ``sam local invoke`` would show it)."""

    def __init__(self, function_id: str, result: InvocationResult) -> None:
        payload = result.payload or {}
        super().__init__(f"{function_id}: {payload.get('errorType')}: {payload.get('errorMessage')}")
        self.function_id = function_id
        self.result = result


def lambda_runtime_environment(spec: FunctionSpec, overrides: Mapping[str, str]) -> dict[str, str]:
    """The process environment of one execution environment: template variables, then the local
    overrides, then what the Lambda service itself sets (those names are reserved in Lambda)."""
    environment = {
        # Nothing from the developer's shell leaks in (a dangling AWS_PROFILE would break boto3),
        # except what a process needs to find programs.
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    environment.update(spec.environment)
    environment.update(overrides)
    environment.update(spec.runtime_variables)
    environment.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_seconds),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{uuid.uuid4().hex}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime or 'python3.13'}",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "LAMBDA_RUNTIME_DIR": str(RUNTIME_SCRIPT.parent),
            "_HANDLER": spec.handler,
        }
    )
    return environment


class _Worker:
    """One subprocess running ``lambda_runtime.py``."""

    def __init__(self, spec: FunctionSpec, environment: Mapping[str, str], log_sink: LogSink) -> None:
        request_read, self._request_write = os.pipe()
        self._response_read, response_write = os.pipe()
        command = [sys.executable, "-I", "-u", str(RUNTIME_SCRIPT)]
        command += ["--request-fd", str(request_read), "--response-fd", str(response_write)]
        command += ["--task-root", str(spec.code_dir)]
        for layer_dir in spec.layer_dirs:
            command += ["--layer", str(layer_dir)]
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            command,
            env=dict(environment),
            cwd=spec.code_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(request_read, response_write),
            # Own session: Ctrl-C in the terminal reaches the stack, which then stops workers itself.
            start_new_session=True,
        )
        os.close(request_read)
        os.close(response_write)
        self._responses = os.fdopen(self._response_read, "rb")
        self._requests = os.fdopen(self._request_write, "wb")
        self.warm = False
        self._log_threads = [
            threading.Thread(target=self._forward_logs, args=(stream, spec.logical_id, log_sink), daemon=True)
            for stream in (self.process.stdout, self.process.stderr)
        ]
        for thread in self._log_threads:
            thread.start()

    @staticmethod
    def _forward_logs(stream: IO[bytes] | None, function_id: str, log_sink: LogSink) -> None:
        if stream is None:
            return
        for raw_line in stream:
            log_sink(function_id, raw_line.decode("utf-8", "replace").rstrip("\n"))

    def alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, request: dict[str, Any], timeout_seconds: float) -> dict[str, Any] | None:
        """The runtime's answer, or None if the worker did not answer in time or died."""
        try:
            self._requests.write(json.dumps(request).encode() + b"\n")
            self._requests.flush()
        except (BrokenPipeError, OSError):
            return None
        with selectors.DefaultSelector() as selector:
            selector.register(self._responses, selectors.EVENT_READ)
            if not selector.select(timeout=timeout_seconds):
                return None
        try:
            line = self._responses.readline()
            return json.loads(line) if line else None
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()

    def stop(self) -> None:
        self.kill()
        self.process.wait()
        for stream in (self._requests, self._responses):
            with contextlib.suppress(OSError):  # already broken: the process is gone either way
                stream.close()
        for thread in self._log_threads:
            thread.join(timeout=2)


class FunctionPool:
    """Execution environments of one function, created on demand up to ``max_workers``."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        log_sink: LogSink = console_log_sink,
        max_workers: int = DEFAULT_MAX_WORKERS,
    ) -> None:
        self.spec = spec
        self.environment = dict(environment)
        self.log_sink = log_sink
        self.max_workers = max(1, min(max_workers, spec.reserved_concurrency or max_workers))
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._changed = threading.Condition()
        self._closed = False
        self._in_flight = 0

    def _acquire(self) -> _Worker:
        with self._changed:
            while True:
                if self._closed:
                    raise RuntimeError(f"{self.spec.logical_id}: the stack is stopping")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        return worker
                    self._all.discard(worker)
                if len(self._all) < self.max_workers:
                    worker = _Worker(self.spec, self.environment, self.log_sink)
                    self._all.add(worker)
                    return worker
                self._changed.wait()

    def _release(self, worker: _Worker, keep: bool) -> None:
        with self._changed:
            if keep and not self._closed and worker.alive():
                self._idle.append(worker)
            else:
                self._all.discard(worker)
                worker.stop()
            self._changed.notify()

    def invoke(self, event: Any, request_id: str | None = None, *, throttle: bool = False) -> InvocationResult:
        """Run ``event``. ``throttle``: a synchronous caller (API Gateway) is refused at once when the
        reserved concurrency is in use, as Lambda refuses it; otherwise (queue pollers, ``invoke``)
        the call waits for an environment, as an event source mapping slows down."""
        request_id = request_id or str(uuid.uuid4())
        reserved = self.spec.reserved_concurrency
        with self._changed:
            if throttle and reserved is not None and self._in_flight >= reserved:
                self.log_sink(self.spec.logical_id, f"throttled: reserved concurrency {reserved} in use")
                payload = {"errorType": "TooManyRequestsException", "errorMessage": "Rate Exceeded."}
                return InvocationResult(request_id, payload, True, 0.0, False, throttled=True)
            self._in_flight += 1
        try:
            return self._invoke(event, request_id)
        finally:
            with self._changed:
                self._in_flight -= 1

    def _invoke(self, event: Any, request_id: str) -> InvocationResult:
        timeout = float(self.spec.timeout_seconds)
        worker = self._acquire()
        cold_start = not worker.warm
        started = time.monotonic()
        self.log_sink(self.spec.logical_id, f"START RequestId: {request_id} Version: $LATEST")
        request = {
            "request_id": request_id,
            "event": event,
            "invoked_function_arn": self.spec.arn(LOCAL_REGION, LOCAL_ACCOUNT_ID),
            "deadline_epoch_ms": int((time.time() + timeout) * 1000),
        }
        answer = worker.invoke(request, timeout)
        duration_ms = (time.monotonic() - started) * 1000
        if answer is None:
            timed_out = worker.alive()
            self._release(worker, keep=False)
            if timed_out:
                message = f"Task timed out after {timeout:.2f} seconds"
                payload: Any = {"errorMessage": message, "errorType": "Sandbox.Timedout"}
            else:
                message = (
                    f"RequestId: {request_id} Error: Runtime exited with error: exit status {worker.process.returncode}"
                )
                payload = {"errorMessage": message, "errorType": "Runtime.ExitError"}
            self.log_sink(self.spec.logical_id, message)
            error = True
        else:
            worker.warm = True
            self._release(worker, keep=not answer.get("init_failed"))
            error = not answer["ok"]
            payload = answer["error"] if error else answer.get("result")
        self.log_sink(self.spec.logical_id, f"END RequestId: {request_id}")
        self.log_sink(
            self.spec.logical_id,
            f"REPORT RequestId: {request_id} Duration: {duration_ms:.2f} ms"
            f"{' (cold start)' if cold_start else ''} Memory Size: {self.spec.memory_mb} MB",
        )
        return InvocationResult(request_id, payload, error, duration_ms, cold_start)

    def close(self) -> None:
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = self._all.difference(idle)
            self._all.clear()
            self._changed.notify_all()
        for worker in busy:
            worker.kill()  # the invoking thread sees it die and cleans up after it
        for worker in idle:
            worker.stop()
