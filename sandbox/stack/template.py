"""The parts of a SAM template the local stack runs: functions, their APIs, routes and queues.

Everything is read from the template (Globals merged the way SAM merges them), never listed
by hand, so a new function or route shows up locally as soon as it is in ``template.yaml``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.stack.cfn_yaml import TemplateError, load_template
from sandbox.stack.intrinsics import IntrinsicResolver

LOG = logging.getLogger(__name__)

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")
REST_API_TYPE = "AWS::Serverless::Api"
IMPLICIT_REST_API_ID = "ServerlessRestApi"  # what SAM names the API it creates for bare Api events
DEFAULT_TIMEOUT_SECONDS = 3
DEFAULT_MEMORY_MB = 128
DEFAULT_SQS_BATCH_SIZE = 10


@dataclass(frozen=True)
class CorsConfig:
    """An Api's ``Cors`` property, quotes stripped. ``allow_origins`` splits a comma list."""

    allow_origins: tuple[str, ...]
    allow_methods: str | None = None
    allow_headers: str | None = None
    max_age: str | None = None
    allow_credentials: bool = False

    def origin_is_allowed(self, origin: str) -> bool:
        return "*" in self.allow_origins or origin in self.allow_origins


@dataclass(frozen=True)
class GatewayResponse:
    """One entry of an Api's ``GatewayResponses``: how API Gateway words its own errors."""

    status_code: int | None
    templates: Mapping[str, str]  # content type -> mapping template
    headers: Mapping[str, str]


@dataclass(frozen=True)
class ApiSpec:
    logical_id: str
    stage_name: str
    cors: CorsConfig | None
    binary_media_types: tuple[str, ...]
    stage_variables: Mapping[str, str] | None
    gateway_responses: Mapping[str, GatewayResponse] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiRoute:
    api_id: str
    path: str
    method: str  # upper case; "ANY" matches every method
    function_id: str
    event_name: str


@dataclass(frozen=True)
class SqsEventSource:
    function_id: str
    event_name: str
    queue_logical_id: str
    batch_size: int
    batching_window_seconds: int
    report_batch_item_failures: bool
    maximum_concurrency: int | None
    enabled: bool


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    function_name: str
    code_dir: Path
    handler: str
    runtime: str
    architecture: str
    memory_mb: int
    timeout_seconds: int
    environment: Mapping[str, str]
    layer_dirs: tuple[Path, ...]
    reserved_concurrency: int | None
    code_uri: str
    runtime_variables: Mapping[str, str] = field(default_factory=dict)  # what Lambda adds (log format)

    def arn(self, region: str, account_id: str) -> str:
        return f"arn:aws:lambda:{region}:{account_id}:function:{self.function_name}"


@dataclass
class Application:
    """The runnable view of a template for one parameter set and one set of local resources."""

    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    apis: dict[str, ApiSpec] = field(default_factory=dict)
    routes: list[ApiRoute] = field(default_factory=list)
    sqs_sources: list[SqsEventSource] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what is in the template but not emulated

    def function_for_code_uri(self, folder: str) -> FunctionSpec | None:
        for spec in self.functions.values():
            if spec.code_dir.name == folder and spec.code_dir.parent.name == "functions":
                return spec
        return None


def _is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = next(iter(value))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals rule: maps merge (resource wins), lists concatenate (globals first),
    anything else (intrinsics included) is replaced by the resource's value."""
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        if _is_intrinsic(global_value) or _is_intrinsic(local_value):
            return local_value
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = merge_globals(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return [*global_value, *local_value]
    return local_value


def _strip_quotes(value: Any) -> str:
    text = str(value).strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1]
    return text


def _logical_id_of(raw: Any) -> str | None:
    """The logical id behind ``!Ref X`` or ``!GetAtt X.Arn``, without resolving it."""
    if isinstance(raw, dict) and len(raw) == 1:
        ((key, argument),) = raw.items()
        if key == "Ref" and isinstance(argument, str):
            return argument
        if key == "Fn::GetAtt":
            return str(argument[0] if isinstance(argument, list) else argument.split(".")[0])
    return None


def _env_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class SamTemplate:
    """A loaded template file. ``application()`` resolves it against local resources."""

    def __init__(self, path: Path, document: dict[str, Any]) -> None:
        self.path = path.resolve()
        self.root = self.path.parent
        self.document = document
        self.resources: Mapping[str, Any] = document.get("Resources") or {}
        globals_section = document.get("Globals") or {}
        self.function_globals: Mapping[str, Any] = globals_section.get("Function") or {}
        self.api_globals: Mapping[str, Any] = globals_section.get("Api") or {}

    @classmethod
    def load(cls, path: Path) -> SamTemplate:
        return cls(path, load_template(path))

    def resources_of_type(self, *types: str) -> dict[str, Mapping[str, Any]]:
        return {
            logical_id: resource for logical_id, resource in self.resources.items() if resource.get("Type") in types
        }

    def function_properties(self, logical_id: str) -> dict[str, Any]:
        properties = self.resources[logical_id].get("Properties") or {}
        merged: dict[str, Any] = merge_globals(dict(self.function_globals), dict(properties))
        return merged

    # -- the runnable view -----------------------------------------------------------------
    def application(self, resolver: IntrinsicResolver, stack_name: str) -> Application:
        application = Application()
        layer_dirs = self._local_layer_dirs(resolver)
        for logical_id in self.resources_of_type(SERVERLESS_FUNCTION):
            if not resolver.resource_is_created(logical_id):
                continue
            spec = self._function_spec(logical_id, resolver, stack_name, layer_dirs, application.notes)
            if spec is None:
                continue
            application.functions[logical_id] = spec
            self._collect_events(logical_id, resolver, application)
        for api_id in {route.api_id for route in application.routes}:
            application.apis[api_id] = self._api_spec(api_id, resolver)
        return application

    def _local_layer_dirs(self, resolver: IntrinsicResolver) -> dict[str, Path]:
        """Layer ARN (as the resolver renders ``!Ref``) -> the folder Lambda would put on the path."""
        layers: dict[str, Path] = {}
        for logical_id, resource in self.resources_of_type(*LAYER_TYPES).items():
            if not resolver.resource_is_created(logical_id):
                continue
            properties = resource.get("Properties") or {}
            content = properties.get("ContentUri") or properties.get("Content")
            if not isinstance(content, str):
                continue
            content_dir = (self.root / content).resolve()
            has_build_method = bool((resource.get("Metadata") or {}).get("BuildMethod"))
            # A built layer gets its package copied into python/ by the build; an unbuilt one
            # ships its own python/ folder, which Lambda mounts at /opt/python.
            if not has_build_method and (content_dir / "python").is_dir():
                content_dir = content_dir / "python"
            layers[str(resolver.ref(logical_id))] = content_dir
        return layers

    def _function_spec(
        self,
        logical_id: str,
        resolver: IntrinsicResolver,
        stack_name: str,
        layer_dirs: Mapping[str, Path],
        notes: list[str],
    ) -> FunctionSpec | None:
        properties = self.function_properties(logical_id)
        if properties.get("PackageType") == "Image" or not isinstance(properties.get("CodeUri"), str):
            notes.append(f"{logical_id}: only local CodeUri folders run locally; skipped")
            return None
        code_uri = str(properties["CodeUri"])
        variables = resolver.resolve((properties.get("Environment") or {}).get("Variables") or {})
        layer_paths: list[Path] = []
        for layer_arn in resolver.resolve(properties.get("Layers") or []):
            if str(layer_arn) in layer_dirs:
                layer_paths.append(layer_dirs[str(layer_arn)])
            else:
                notes.append(f"{logical_id}: layer {layer_arn} is not in the template; its code must be in .venv")
        function_name = resolver.resolve(properties.get("FunctionName")) or f"{stack_name}-{logical_id}"
        architectures = resolver.resolve(properties.get("Architectures") or ["x86_64"])
        # Through a dict: an !If that gives AWS::NoValue leaves the property unset, as in AWS.
        reserved = resolver.resolve({"value": properties.get("ReservedConcurrentExecutions")}).get("value")
        logging_config = resolver.resolve(properties.get("LoggingConfig") or {})
        runtime_variables = {}
        if logging_config.get("LogFormat"):
            runtime_variables["AWS_LAMBDA_LOG_FORMAT"] = str(logging_config["LogFormat"])
        if logging_config.get("ApplicationLogLevel"):
            runtime_variables["AWS_LAMBDA_LOG_LEVEL"] = str(logging_config["ApplicationLogLevel"])
        return FunctionSpec(
            logical_id=logical_id,
            function_name=str(function_name),
            code_dir=(self.root / code_uri).resolve(),
            code_uri=code_uri,
            handler=str(resolver.resolve(properties.get("Handler", "app.lambda_handler"))),
            runtime=str(resolver.resolve(properties.get("Runtime", ""))),
            architecture=str(architectures[0]),
            memory_mb=int(resolver.resolve(properties.get("MemorySize", DEFAULT_MEMORY_MB))),
            timeout_seconds=int(resolver.resolve(properties.get("Timeout", DEFAULT_TIMEOUT_SECONDS))),
            environment={name: _env_string(value) for name, value in variables.items()},
            layer_dirs=tuple(layer_paths),
            reserved_concurrency=int(reserved) if reserved is not None else None,
            runtime_variables=runtime_variables,
        )

    def _collect_events(self, function_id: str, resolver: IntrinsicResolver, application: Application) -> None:
        properties = self.function_properties(function_id)
        for event_name, event in (properties.get("Events") or {}).items():
            event_type = event.get("Type")
            event_properties = event.get("Properties") or {}
            if event_type == "Api":
                api_id = _logical_id_of(event_properties.get("RestApiId")) or IMPLICIT_REST_API_ID
                application.routes.append(
                    ApiRoute(
                        api_id=api_id,
                        path=str(resolver.resolve(event_properties["Path"])),
                        method=str(resolver.resolve(event_properties["Method"])).upper(),
                        function_id=function_id,
                        event_name=event_name,
                    )
                )
            elif event_type == "SQS":
                application.sqs_sources.append(self._sqs_source(function_id, event_name, event_properties, resolver))
            else:
                application.notes.append(
                    f"{function_id}.{event_name}: {event_type} events are not emulated; "
                    f"run the function with `make invoke FN={function_id} EVENT=...`"
                )

    def _sqs_source(
        self, function_id: str, event_name: str, properties: Mapping[str, Any], resolver: IntrinsicResolver
    ) -> SqsEventSource:
        queue_id = _logical_id_of(properties.get("Queue"))
        if queue_id is None or queue_id not in self.resources:
            raise TemplateError(
                f"{function_id}.{event_name}: the SQS Queue must be !GetAtt <QueueInThisTemplate>.Arn to run locally"
            )
        scaling = resolver.resolve(properties.get("ScalingConfig") or {})
        response_types = resolver.resolve(properties.get("FunctionResponseTypes") or [])
        maximum_concurrency = scaling.get("MaximumConcurrency")
        return SqsEventSource(
            function_id=function_id,
            event_name=event_name,
            queue_logical_id=queue_id,
            batch_size=int(resolver.resolve(properties.get("BatchSize", DEFAULT_SQS_BATCH_SIZE))),
            batching_window_seconds=int(resolver.resolve(properties.get("MaximumBatchingWindowInSeconds", 0))),
            report_batch_item_failures="ReportBatchItemFailures" in response_types,
            maximum_concurrency=int(maximum_concurrency) if maximum_concurrency is not None else None,
            enabled=str(resolver.resolve(properties.get("Enabled", True))).lower() != "false",
        )

    def _api_spec(self, api_id: str, resolver: IntrinsicResolver) -> ApiSpec:
        if api_id == IMPLICIT_REST_API_ID:
            properties: dict[str, Any] = dict(self.api_globals)
            stage_name: Any = "Prod"
        else:
            resource = self.resources.get(api_id) or {}
            if resource.get("Type") != REST_API_TYPE:
                raise TemplateError(f"RestApiId {api_id!r} is not an {REST_API_TYPE} in the template")
            properties = merge_globals(dict(self.api_globals), dict(resource.get("Properties") or {}))
            stage_name = properties.get("StageName", "Prod")
        binary_types = resolver.resolve(properties.get("BinaryMediaTypes") or [])
        variables = resolver.resolve(properties.get("Variables"))
        return ApiSpec(
            logical_id=api_id,
            stage_name=str(resolver.resolve(stage_name)),
            cors=_cors_config(resolver.resolve(properties.get("Cors"))),
            binary_media_types=tuple(str(item).replace("~1", "/") for item in binary_types),
            stage_variables={key: str(value) for key, value in variables.items()} if variables else None,
            gateway_responses=_gateway_responses(resolver.resolve(properties.get("GatewayResponses") or {})),
        )


def _gateway_responses(responses: Mapping[str, Any]) -> dict[str, GatewayResponse]:
    parsed: dict[str, GatewayResponse] = {}
    for response_type, response in responses.items():
        headers = (response.get("ResponseParameters") or {}).get("Headers") or {}
        status = response.get("StatusCode")
        parsed[response_type] = GatewayResponse(
            status_code=int(status) if status is not None else None,
            templates={str(key): str(value) for key, value in (response.get("ResponseTemplates") or {}).items()},
            headers={str(name): _strip_quotes(value) for name, value in headers.items()},
        )
    return parsed


def _cors_config(cors: Any) -> CorsConfig | None:
    if not cors:
        return None
    if isinstance(cors, str):
        cors = {"AllowOrigin": cors}
    origins = tuple(origin.strip() for origin in _strip_quotes(cors.get("AllowOrigin", "'*'")).split(","))

    def optional(key: str) -> str | None:
        return _strip_quotes(cors[key]) if cors.get(key) is not None else None

    return CorsConfig(
        allow_origins=tuple(origin for origin in origins if origin),
        allow_methods=optional("AllowMethods"),
        allow_headers=optional("AllowHeaders"),
        max_age=optional("MaxAge"),
        allow_credentials=str(cors.get("AllowCredentials", False)).lower() == "true",
    )
