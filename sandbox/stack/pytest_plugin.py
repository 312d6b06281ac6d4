"""pytest plugin: the whole local stack on free ports, for end-to-end tests.

    def test_health(local_stack):
        response = requests.get(f"{local_stack.api_url}/health")
        assert response.status_code == 200

    @pytest.fixture(scope="module")
    def my_stack(local_stack_factory):
        return local_stack_factory("tests/stack/fixtures/template.yaml", start_sandbox=False)

A stack starts once per (template, options) per session (per xdist worker) and stops at the
end. moto runs in a child process, so ``mock_aws`` in other tests cannot reset it; while a
``mock_aws`` test runs, though, moto intercepts botocore in this process, so do not drive the
stack from inside one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from sandbox.stack.env_file import REPO_ROOT
from sandbox.stack.resources import PhysicalResource
from sandbox.stack.stack import LocalStack
from sandbox.stack.workers import InvocationResult

DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"


class RecordedLogs:
    """Every line the functions (and the gateway) logged, by function logical id."""

    def __init__(self) -> None:
        self._lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, source: str, line: str) -> None:
        with self._lock:
            self._lines.append((source, line))

    def lines(self, source: str | None = None) -> list[str]:
        with self._lock:
            return [line for origin, line in self._lines if source is None or origin == source]


class RunningStack:
    """What a test needs from a started ``LocalStack``."""

    def __init__(self, stack: LocalStack, logs: RecordedLogs) -> None:
        self.stack = stack
        self._logs = logs

    @property
    def api_url(self) -> str:
        return str(self.stack.api_url)

    @property
    def moto_url(self) -> str:
        return self.stack.moto_url

    @property
    def sandbox_url(self) -> str | None:
        return self.stack.sandbox_url

    def invoke(self, logical_id: str, event: Any) -> Any:
        """The handler's return value; raises ``FunctionError`` on an unhandled error or timeout."""
        return self.stack.invoke(logical_id, event)

    def invoke_result(self, logical_id: str, event: Any) -> InvocationResult:
        return self.stack.invoke_result(logical_id, event)

    def resource(self, logical_id: str) -> PhysicalResource:
        """``.name``, ``.arn`` and (queues) ``.url`` of a template resource on moto."""
        return self.stack.resource(logical_id)

    def client(self, service: str) -> Any:
        """A boto3 client for the stack's moto."""
        return self.stack.client(service)

    def function_environment(self, logical_id: str) -> dict[str, str]:
        return self.stack.function_environment(logical_id)

    def logs(self, function_id: str | None = None) -> list[str]:
        return self._logs.lines(function_id)


StackFactory = Callable[..., RunningStack]


@pytest.fixture(scope="session")
def local_stack_factory() -> Iterator[StackFactory]:
    """``start(template=<repo template.yaml>, *, parameters=None, start_sandbox=True,
    secret_seeds=None)`` -> a started stack, reused for identical arguments."""
    started: dict[tuple[Any, ...], RunningStack] = {}

    def start(
        template: str | Path = DEFAULT_TEMPLATE,
        *,
        parameters: Mapping[str, str] | None = None,
        start_sandbox: bool = True,
        secret_seeds: Mapping[str, Callable[[], dict[str, Any]]] | None = None,
    ) -> RunningStack:
        template_path = Path(template) if Path(template).is_absolute() else REPO_ROOT / template
        key = (
            str(template_path),
            tuple(sorted((parameters or {}).items())),
            start_sandbox,
            tuple(sorted(secret_seeds or {})),
        )
        if key not in started:
            logs = RecordedLogs()
            stack = LocalStack(
                template_path,
                api_port=0,
                sandbox_port=0,
                moto_port=0,
                parameter_overrides=parameters,
                secret_seeds=secret_seeds,
                start_sandbox=start_sandbox,
                moto_in_child_process=True,
                log_sink=logs,
            )
            started[key] = RunningStack(stack.start(), logs)
        return started[key]

    yield start
    for running in started.values():
        running.stack.stop()


@pytest.fixture(scope="session")
def local_stack(local_stack_factory: StackFactory) -> RunningStack:
    """The repository's template.yaml running on free ports, sandbox and all."""
    return local_stack_factory()
