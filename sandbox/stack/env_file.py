"""The env-vars file for ``sam local invoke`` / ``sam local start-api`` users who have Docker.

``make dev`` writes it at every start, from the template it runs, so it cannot drift from
template.yaml (and is not committed: .local-stack/ is ignored). Functions in containers reach
the stack on the host through host.docker.internal.
SAM applies only variables the template declares for a function; the "Parameters" block holds
the overrides every function gets, the per-function blocks the template's own variables
resolved to the local resource names that ``make dev`` creates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sandbox.stack.intrinsics import PseudoParameters, resolve_parameters
from sandbox.stack.local_config import (
    LOCAL_STACK_NAME,
    MOTO_PORT,
    SANDBOX_PORT,
    function_overrides,
    local_parameter_values,
)
from sandbox.stack.resources import LocalResources
from sandbox.stack.template import SamTemplate

REPO_ROOT = Path(__file__).resolve().parents[2]
SAM_ENV_FILE = REPO_ROOT / ".local-stack" / "sam-env.json"
DOCKER_HOST = "host.docker.internal"
# Only what points a function at the local services; credentials and region come from sam itself.
_SHARED_VARIABLES = ("MAILCHIMP_API_URL", "MANDRILL_API_URL", "AWS_ENDPOINT_URL")


def sam_env_vars(template_path: Path) -> dict[str, Any]:
    template = SamTemplate.load(template_path)
    sandbox_url = f"http://{DOCKER_HOST}:{SANDBOX_PORT.default}"
    moto_url = f"http://{DOCKER_HOST}:{MOTO_PORT.default}"
    declared = template.document.get("Parameters") or {}
    parameters = resolve_parameters(template.document, local_parameter_values(declared))
    resources = LocalResources(template, PseudoParameters(stack_name=LOCAL_STACK_NAME), parameters, moto_url)
    application = template.application(resources.resolver, LOCAL_STACK_NAME)
    overrides = function_overrides(sandbox_url, moto_url)
    env_vars: dict[str, Any] = {"Parameters": {name: overrides[name] for name in _SHARED_VARIABLES}}
    for logical_id in sorted(application.functions):
        env_vars[logical_id] = dict(sorted(application.functions[logical_id].environment.items()))
    return env_vars


def render(template_path: Path) -> str:
    return json.dumps(sam_env_vars(template_path), indent=2) + "\n"


def write(template_path: Path, destination: Path = SAM_ENV_FILE) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(render(template_path), encoding="utf-8")
    return destination
