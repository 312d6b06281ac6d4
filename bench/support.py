"""What the benchmarks share: free ports, the Mailchimp sandbox in its own process (so it never
shares the benchmark's GIL) and a moto server beside it, and the harness that runs a function in
a child process against them."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import psutil
import requests
from moto.server import ThreadedMotoServer

from sandbox.mailchimp import MARKETING_API_KEY
from sandbox.mailchimp.client import SandboxClient
from sandbox.stack.resources import create_from_template

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_sandbox(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.mailchimp", "--port", str(port), "--log-level", "WARNING"],
        cwd=REPO_ROOT,
    )
    return answering(process, f"http://127.0.0.1:{port}/_sandbox/health", "the sandbox")


def answering(process: subprocess.Popen[bytes], url: str, name: str) -> subprocess.Popen[bytes]:
    """``process`` once ``url`` answers with a success, within 30 seconds (else it is killed)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1).raise_for_status()
            return process
        except requests.exceptions.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{name} did not start")


@contextmanager
def sandbox_and_moto() -> Iterator[tuple[SandboxClient, str]]:
    """The sandbox (own process) and a moto server, stopped afterwards: (sandbox, moto URL)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    port = free_port()
    process = start_sandbox(port)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, moto_port = moto.get_host_and_port()
        yield SandboxClient(f"http://127.0.0.1:{port}"), f"http://{host}:{moto_port}"
    finally:
        moto.stop()
        process.terminate()
        process.wait(timeout=10)


# ---------------------------------------------------------------- a function in a child process
# bench_export and bench_import run a function's handler in a child process of its own (so its
# peak RSS is its own), driven as its state machine drives it, against the sandbox and a moto
# server in processes of their own.
REGION = "us-east-1"
AWS_ENV = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
RESULT_PREFIX = "RESULT "


def start_moto(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return answering(process, f"http://127.0.0.1:{port}/moto-api/", "moto")


@contextmanager
def sandbox_and_moto_processes() -> Iterator[tuple[str, psutil.Process, str]]:
    """The sandbox and a moto server, each in its own process, stopped afterwards, with the AWS
    environment set: (sandbox URL, sandbox process, moto URL)."""
    os.environ.update(AWS_ENV)
    sandbox_port, moto_port = free_port(), free_port()
    sandbox = start_sandbox(sandbox_port)
    moto = start_moto(moto_port)
    try:
        yield f"http://127.0.0.1:{sandbox_port}", psutil.Process(sandbox.pid), f"http://127.0.0.1:{moto_port}"
    finally:
        for process in (sandbox, moto):
            process.terminate()
            process.wait(timeout=30)


class FifteenMinuteContext:
    """What a handler reads from Lambda's context: a 15-minute deadline."""

    aws_request_id = "bench"

    def __init__(self, function_name: str, memory_limit_in_mb: int) -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = memory_limit_in_mb
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self._deadline = time.monotonic() + 900

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def load_function(name: str) -> ModuleType:
    """In the child: ``functions/<name>/app.py`` and what it imports, untimed (the Lambda init
    phase). boto3 is imported lazily by the layer (for the API functions' cold start), so it is
    imported here too."""
    spec = importlib.util.spec_from_file_location(f"{name}_app", REPO_ROOT / "functions" / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    importlib.import_module("boto3")
    return module


def write_result(result: dict[str, Any]) -> None:
    """In the child: the result line the parent reads, with the child's peak RSS."""
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")


class FunctionBench:
    """The parent's side: the function's resources as template.yaml declares them (on moto, under
    a stack name of its own), the Marketing API key as a secret, the sandbox's control API, and
    the child processes."""

    def __init__(self, sandbox_url: str, sandbox: psutil.Process, moto_url: str, resources: list[str]) -> None:
        self.sandbox_url = sandbox_url
        self.sandbox = sandbox
        self.moto_url = moto_url
        self.control = requests.Session()
        self.resources = create_from_template(
            REPO_ROOT / "template.yaml", moto_url, resources, stack_name=f"bench-{uuid.uuid4().hex[:8]}"
        )
        self.secret_arn = boto3.client("secretsmanager", endpoint_url=moto_url, region_name=REGION).create_secret(
            Name=f"bench/{uuid.uuid4()}", SecretString=json.dumps({"api_key": MARKETING_API_KEY})
        )["ARN"]

    def sandbox_call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.control.request(method, f"{self.sandbox_url}/_sandbox{path}", json=body, timeout=600)
        response.raise_for_status()
        return response.json()

    def audience(self, **seed: Any) -> str:
        """A new audience in an emptied sandbox, seeded as ``seed`` says (``count`` members...)."""
        self.sandbox_call("POST", "/reset")
        list_id = uuid.uuid4().hex[:10]
        self.sandbox_call("POST", "/seed", {"list_id": list_id, **seed})
        return list_id

    def environment(self, **variables: str) -> dict[str, str]:
        """The child's environment: the template's Globals, pointed at moto and the sandbox."""
        return {
            **os.environ,
            **AWS_ENV,
            "AWS_ENDPOINT_URL": self.moto_url,
            "MAILCHIMP_SECRET_ARN": self.secret_arn,
            "MAILCHIMP_API_URL": f"{self.sandbox_url}/3.0",
            "POWERTOOLS_SERVICE_NAME": "chimpbridge",
            "POWERTOOLS_METRICS_NAMESPACE": "ChimpBridge",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "layers" / "chimpbridge"), str(REPO_ROOT)]),
            **variables,
        }

    def run_child(self, module: str, arguments: list[str], environment: dict[str, str], label: str) -> dict[str, Any]:
        """``python -m <module> --child <arguments>``; the result it wrote (``label`` names the run
        in the error when it fails)."""
        completed = subprocess.run(  # noqa: PLW1510 - checked below, with the child's output
            [sys.executable, "-m", module, "--child", *arguments],
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            text=True,
        )
        lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        if completed.returncode != 0 or not lines:
            raise RuntimeError(f"{label} failed:\n{completed.stdout[-2000:]}\n{completed.stderr[-4000:]}")
        return dict(json.loads(lines[-1].removeprefix(RESULT_PREFIX)))
