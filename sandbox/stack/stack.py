"""The local stack: moto + the Mailchimp sandbox + the template's resources, API and queue pollers.

``LocalStack`` is what ``python -m sandbox.stack dev``, ``... invoke`` and the pytest fixture
share. Start order matters: servers first, then resources (functions' environments name them),
then the API and the pollers that invoke functions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sandbox.stack.api_server import ApiGateway, ApiServer
from sandbox.stack.intrinsics import PseudoParameters, resolve_parameters
from sandbox.stack.local_config import (
    API_PORT,
    LOCAL_STACK_NAME,
    MOTO_PORT,
    SANDBOX_PORT,
    SECRET_SEEDS,
    bind_host,
    function_overrides,
    local_parameter_values,
)
from sandbox.stack.resources import LocalResources, PhysicalResource
from sandbox.stack.services import (
    AttachedService,
    ChildProcessMoto,
    InProcessMoto,
    MailchimpSandbox,
    SandboxUnavailable,
    Service,
)
from sandbox.stack.sqs_source import SqsPoller
from sandbox.stack.state_machines import RuleRunner, rule_triggers
from sandbox.stack.template import Application, SamTemplate
from sandbox.stack.waf import web_acls
from sandbox.stack.workers import (
    DEFAULT_MAX_WORKERS,
    FunctionError,
    FunctionPool,
    InvocationResult,
    LogSink,
    console_log_sink,
    lambda_runtime_environment,
)

LOG = logging.getLogger(__name__)
UNREACHABLE_SANDBOX_URL = "http://127.0.0.1:9"  # the discard port: nothing leaks to real Mailchimp


class LocalStack:
    """Run a SAM template on loopback. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        template_path: Path,
        *,
        host: str | None = None,
        api_port: int | None = None,
        sandbox_port: int | None = None,
        moto_port: int | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
        secret_seeds: Mapping[str, Callable[[], dict[str, Any]]] | None = None,
        start_sandbox: bool = True,
        serve_api: bool = True,
        poll_queues: bool = True,
        moto_in_child_process: bool = False,
        attach_moto_url: str | None = None,
        attach_sandbox_url: str | None = None,
        stack_name: str = LOCAL_STACK_NAME,
        log_sink: LogSink = console_log_sink,
        max_workers_per_function: int = DEFAULT_MAX_WORKERS,
    ) -> None:
        self.template = SamTemplate.load(Path(template_path))
        self.host = host or bind_host()
        self.api_port = API_PORT.value() if api_port is None else api_port
        self.sandbox_port = SANDBOX_PORT.value() if sandbox_port is None else sandbox_port
        self.moto_port = MOTO_PORT.value() if moto_port is None else moto_port
        self.parameter_overrides = dict(parameter_overrides or {})
        self.secret_seeds = SECRET_SEEDS if secret_seeds is None else secret_seeds
        self.start_sandbox = start_sandbox
        self.serve_api = serve_api
        self.poll_queues = poll_queues
        self.moto_in_child_process = moto_in_child_process
        self.attach_moto_url = attach_moto_url
        self.attach_sandbox_url = attach_sandbox_url
        self.stack_name = stack_name
        self.log_sink = log_sink
        self.max_workers_per_function = max_workers_per_function

        self.moto: Service | None = None
        self.sandbox: Service | None = None
        self.api_server: ApiServer | None = None
        self.resources: LocalResources | None = None
        self.application = Application()
        self.pollers: list[SqsPoller] = []
        self.rule_runners: list[RuleRunner] = []
        self._pools: dict[str, FunctionPool] = {}
        self._pools_lock = threading.Lock()
        self._environments: dict[str, dict[str, str]] = {}
        self._service_notes: list[str] = []

    # -- addresses ------------------------------------------------------------------------------
    @property
    def moto_url(self) -> str:
        if self.moto is None:
            raise RuntimeError("the stack is not started")
        return self.moto.url

    @property
    def sandbox_url(self) -> str | None:
        return self.sandbox.url if self.sandbox is not None else None

    @property
    def api_url(self) -> str | None:
        return self.api_server.url if self.api_server is not None else None

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        try:
            self._start_services()
            self._create_resources()
            self._prepare_functions()
            if self.serve_api:
                assert self.resources is not None
                firewalls = web_acls(self.template, self.resources.resolver, self._service_notes)
                gateway = ApiGateway(
                    self.application.routes, self.application.apis, self.invoke_from_api, self.log_sink, firewalls
                )
                self.api_server = ApiServer(gateway, self.host, self.api_port).start()
                self._point_connect_at(self.api_server.url)
            if self.poll_queues:
                self._start_pollers()
                self._start_rule_runners()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for poller in self.pollers:
            poller.request_stop()
        for runner in self.rule_runners:
            runner.request_stop()
        if self.api_server is not None:
            self.api_server.stop()
            self.api_server = None
        with self._pools_lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
        for poller in self.pollers:
            poller.join()
        self.pollers = []
        for runner in self.rule_runners:
            runner.join()
        self.rule_runners = []
        for service in (self.sandbox, self.moto):
            if service is not None:
                service.stop()
        self.sandbox = self.moto = None

    def _start_services(self) -> None:
        if self.attach_moto_url:
            self.moto = AttachedService(self.attach_moto_url)
        elif self.moto_in_child_process:
            self.moto = ChildProcessMoto(self.host, self.moto_port)
        else:
            self.moto = InProcessMoto(self.host, self.moto_port)
        if self.attach_sandbox_url:
            self.sandbox = AttachedService(self.attach_sandbox_url)
        elif self.start_sandbox:
            try:
                self.sandbox = MailchimpSandbox(self.host, self.sandbox_port)
            except SandboxUnavailable as error:
                # Functions that never call Mailchimp still run; those that do fail loudly on
                # the unreachable URL they get instead of reaching the real Mailchimp.
                self._service_notes.append(str(error))
                self.log_sink("stack", f"WARNING {error}")

    def _create_resources(self) -> None:
        declared = self.template.document.get("Parameters") or {}
        values = local_parameter_values(declared, self.parameter_overrides)
        parameters = resolve_parameters(self.template.document, values)
        pseudo = PseudoParameters(stack_name=self.stack_name)
        self.resources = LocalResources(self.template, pseudo, parameters, self.moto_url)
        self.resources.ensure_created(self.secret_seeds)

    def _prepare_functions(self) -> None:
        assert self.resources is not None
        self.application = self.template.application(self.resources.resolver, self.stack_name)
        overrides = function_overrides(self.sandbox_url or UNREACHABLE_SANDBOX_URL, self.moto_url)
        for logical_id, spec in self.application.functions.items():
            self._environments[logical_id] = lambda_runtime_environment(spec, overrides)

    def _start_pollers(self) -> None:
        assert self.resources is not None
        resources = self.resources
        for source in self.application.sqs_sources:
            if not source.enabled or source.function_id not in self.application.functions:
                continue
            queue = resources.physical(source.queue_logical_id)
            poller = SqsPoller(
                source,
                queue_url=queue.url or "",
                queue_arn=queue.arn,
                sqs_client_factory=lambda: resources.client("sqs"),
                invoke=self.invoke_result,
                log_sink=self.log_sink,
                local_concurrency_cap=self.max_workers_per_function,
            )
            self.pollers.append(poller.start())

    def _start_rule_runners(self) -> None:
        """State machines that EventBridge rules start (an upload under imports/ starts the import)."""
        assert self.resources is not None
        for trigger in rule_triggers(self.template, self.resources.resolver, self.template.path.parent):
            if trigger.function_id not in self.application.functions:
                continue
            runner = RuleRunner(
                trigger,
                stack_name=self.stack_name,
                client=self.client,
                invoke=self.invoke,
                log_sink=self.log_sink,
            )
            self.rule_runners.append(runner.start())
            self._service_notes.append(
                f"{trigger.state_machine_id}: started by its EventBridge rule {trigger.event_id} "
                "(the function's loop, retries and abort; not the definition itself)"
            )

    def _point_connect_at(self, api_url: str) -> None:
        """The OAuth connect flow needs the API's public URL, known once the API listens: it goes
        into every function's environment (API_PUBLIC_URL, before any invocation) and becomes the
        redirect URI of the sandbox's default OAuth app."""
        for environment in self._environments.values():
            environment["API_PUBLIC_URL"] = api_url
        if self.sandbox_url is None:
            return
        import requests  # noqa: PLC0415 - only with a sandbox

        from sandbox.mailchimp.constants import OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET  # noqa: PLC0415

        app = {
            "client_id": OAUTH_CLIENT_ID,
            "client_secret": OAUTH_CLIENT_SECRET,
            "redirect_uri": f"{api_url}/connect/mailchimp/callback",
            "name": "chimpbridge (local stack)",
        }
        try:
            requests.post(f"{self.sandbox_url}/_sandbox/oauth/apps", json=app, timeout=5).raise_for_status()
        except requests.RequestException as error:
            self._service_notes.append(f"OAuth app not registered in the sandbox ({error})")

    # -- functions ------------------------------------------------------------------------------
    def pool(self, logical_id: str) -> FunctionPool:
        if logical_id not in self.application.functions:
            known = ", ".join(sorted(self.application.functions)) or "none"
            raise KeyError(f"no function {logical_id!r} in {self.template.path.name} (functions: {known})")
        with self._pools_lock:
            if logical_id not in self._pools:
                self._pools[logical_id] = FunctionPool(
                    self.application.functions[logical_id],
                    self._environments[logical_id],
                    self.log_sink,
                    self.max_workers_per_function,
                )
            return self._pools[logical_id]

    def invoke_result(self, logical_id: str, event: Any) -> InvocationResult:
        return self.pool(logical_id).invoke(event)

    def invoke_from_api(self, logical_id: str, event: Any) -> InvocationResult:
        """A synchronous invocation, refused when the function's reserved concurrency is in use."""
        return self.pool(logical_id).invoke(event, throttle=True)

    def invoke(self, logical_id: str, event: Any) -> Any:
        """The handler's return value; raises FunctionError on an unhandled error or timeout."""
        result = self.invoke_result(logical_id, event)
        if result.error:
            raise FunctionError(logical_id, result)
        return result.payload

    def function_environment(self, logical_id: str) -> dict[str, str]:
        return dict(self._environments[logical_id])

    # -- resources ------------------------------------------------------------------------------
    def resource(self, logical_id: str) -> PhysicalResource:
        if self.resources is None:
            raise RuntimeError("the stack is not started")
        if logical_id not in self.template.resources:
            raise KeyError(f"no resource {logical_id!r} in {self.template.path.name}")
        return self.resources.physical(logical_id)

    def client(self, service: str) -> Any:
        """A boto3 client for the local AWS (moto)."""
        if self.resources is None:
            raise RuntimeError("the stack is not started")
        return self.resources.client(service)

    @property
    def notes(self) -> list[str]:
        return [*self._service_notes, *(self.resources.notes if self.resources else []), *self.application.notes]
