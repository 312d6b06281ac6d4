"""Cold start of every function as Lambda runs it: what `sam build` makes, zipped the way sam
packages it (entries dated 1980), unpacked read-only, on Python 3.13 writing no bytecode.

* Ours: ``sam build`` of template.yaml into a scratch folder (the layer's native wheels for this
  machine's CPU, LAYER_PLATFORM, so that it can run here; all else is what we ship).
* Baseline: the tutorial signup (bench/signup_tutorial_baseline: SDK from its requirements.txt,
  boto3 at import), built by sam's own pip builder and packaged the same way.
* Each function also runs from two copies of the same build without our bytecode: one where
  Python has already written its own cache ("warm cache", what a developer's venv has) and one
  read-only with sources only (what the layer shipped before it carried bytecode).

Each run is a fresh process: ``sys.path`` as in Lambda (task, layer, then the runtime's boto3,
here the venv's), the template's environment on the local stack (moto + the Mailchimp sandbox,
no injected latency), one event from ``events/``. The clock runs from before the handler's
import to the end of its first invocation. Medians of BENCH_COLDSTART_RUNS runs, interleaved.
Results in bench/results/coldstart.json.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.mailchimp import DEFAULT_LIST_ID
from sandbox.mailchimp.client import SandboxClient
from sandbox.stack.artifacts import as_deployed, remove
from sandbox.stack.s3_uploads import stage_upload
from sandbox.stack.stack import LocalStack
from tests.support.cloudformation import ResponseBucket

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "coldstart.json"
BASELINE_TEMPLATE = REPO_ROOT / "bench" / "signup_tutorial_baseline" / "template.yaml"
RUNS = int(os.environ.get("BENCH_COLDSTART_RUNS", "7"))
SIGNUP_TARGET = 0.5  # ours / tutorial, total of import and first signup
IMPORT_TARGET = 1.2  # shipped / warm cache, import
WARM_SIGNUPS = 100
EXPORT_MEMBERS = 100
RESPONSE_URL = ""
# What Lambda's python3.13 runtime puts on sys.path after the layer (/var/runtime).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")

# Runs in the fresh process (-S -B: no site, no bytecode written). Only sys/time/json/importlib
# are imported before the clock starts.
RUNNER = textwrap.dedent(
    """
    import importlib, json, sys, time
    task, layer, runtime, event_json, warm = sys.argv[1:6]
    sys.path[0:0] = [p for p in (task, layer, runtime) if p]
    started = time.perf_counter()
    module = importlib.import_module("app")
    imported = time.perf_counter()

    class Context:
        function_name = "coldstart"; memory_limit_in_mb = 512; aws_request_id = "cold-start"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:coldstart"
        def get_remaining_time_in_millis(self): return 60_000

    event = json.loads(event_json)
    answer = module.lambda_handler(event, Context())
    finished = time.perf_counter()
    statuses = [answer.get("statusCode") if isinstance(answer, dict) else None]
    if int(warm):
        first_email = json.loads(event["body"])["email"]
        for index in range(int(warm)):
            event["body"] = json.dumps({"email": f"warm-{index}-{first_email}"})
            statuses.append(module.lambda_handler(event, Context())["statusCode"])
    print(json.dumps({"import": imported - started, "first": finished - imported, "statuses": statuses}))
    """
)


def load_event(path: str) -> dict[str, Any]:
    return dict(json.loads((REPO_ROOT / "events" / path).read_text()))


def signup_event(_: SandboxClient) -> dict[str, Any]:
    event = load_event("signup/subscribe-json.json")
    event["body"] = json.dumps({"email": f"cold-{uuid.uuid4().hex[:10]}@example.org"})
    return event


def email_event(_: SandboxClient) -> dict[str, Any]:
    event = load_event("email_sender/welcome.json")
    for record in event["Records"]:
        body = json.loads(record["body"])
        body["idempotency_key"] = f"registration:{uuid.uuid4().hex}"
        record["body"] = json.dumps(body)
    return event


def export_event(sandbox: SandboxClient) -> dict[str, Any]:
    """A full export of an audience of its own (a run holds its audience's lock until done)."""
    list_id = uuid.uuid4().hex[:10]
    sandbox.seed(list_id, EXPORT_MEMBERS)
    return {**load_event("audience_export/full.json"), "audiences": [list_id]}


def import_event(stack: LocalStack) -> Callable[[SandboxClient], dict[str, Any]]:
    """The sample upload under a key of its own each run (an ETag already imported is a no-op)."""

    def event(_: SandboxClient) -> dict[str, Any]:
        sample = load_event("audience_import/object-created.json")
        found = sample["detail"]["object"]
        found["key"] = found["key"].replace("contacts.csv", f"cold-{uuid.uuid4().hex[:10]}.csv")
        s3 = stack.client("s3")
        contacts = (REPO_ROOT / "events" / "audience_import" / "contacts.csv").read_bytes()
        s3.put_object(Bucket=sample["detail"]["bucket"]["name"], Key=found["key"], Body=contacts)
        return stage_upload(s3, sample, None)[0]

    return event


# The event a function's first invocation gets where the first sample in events/<folder>/ would
# not do: a fresh one where the function deduplicates. A custom resource's ResponseURL is local.
EVENTS: dict[str, Callable[[SandboxClient], dict[str, Any]]] = {
    "signup": signup_event,
    "registration_hook": lambda _: load_event("registration_hook/registration.json"),
    "email_sender": email_event,
    "audience_export": export_event,
    "mailchimp_webhook": lambda _: load_event("mailchimp_webhook/subscribe.json"),
}


def first_sample(folder: str) -> Callable[[SandboxClient], dict[str, Any]]:
    samples = sorted((REPO_ROOT / "events" / folder).glob("*.json"))
    if not samples:
        raise RuntimeError(f"functions/{folder} has no sample event in events/{folder}/")
    return lambda _: load_event(f"{folder}/{samples[0].name}")


@contextmanager
def response_url_stand_in() -> Iterator[None]:
    """CloudFormation's presigned response URL, on loopback (answers 200 to the function's PUT)."""
    global RESPONSE_URL  # noqa: PLW0603 - one stand-in per run, read by run_once
    bucket = ResponseBucket().start()
    RESPONSE_URL = bucket.response_url("coldstart")
    try:
        yield
    finally:
        bucket.stop()


@dataclass
class Subject:
    """One function in one variant: folders to run from, environment, event."""

    label: str
    variant: str
    task: Path
    layer: Path | None
    environment: dict[str, str]
    event: Callable[[SandboxClient], dict[str, Any]]


def sam_build(template: Path, build_dir: Path, env: dict[str, str]) -> Path:
    sam = Path(sys.executable).with_name("sam")
    command = [str(sam), "build", "--template", str(template), "--build-dir", str(build_dir), "--parallel"]
    subprocess.run(command, cwd=template.parent, env=env, check=True, capture_output=True, timeout=600)
    return build_dir


def host_layer_platform() -> str:
    return {"x86_64": "manylinux2014_x86_64", "aarch64": "manylinux2014_aarch64"}[platform.machine()]


def runtime_folder(destination: Path) -> Path:
    """Lambda's /var/runtime stand-in: the venv's boto3 and its closure, linked."""
    destination.mkdir(parents=True)
    for name in RUNTIME_PACKAGES:
        module = __import__(name)
        source = Path(module.__file__ or "")
        target = source.parent if source.name == "__init__.py" else source
        (destination / target.name).symlink_to(target)
    return destination


def without_bytecode(folder: Path, destination: Path) -> Path:
    shutil.copytree(folder, destination, ignore=shutil.ignore_patterns("__pycache__"))
    return destination


def run_once(subject: Subject, runtime: Path, sandbox: SandboxClient, warm: int = 0) -> dict[str, Any]:
    event = subject.event(sandbox)
    if "ResponseURL" in event:
        event["ResponseURL"] = RESPONSE_URL
    layer = str(subject.layer) if subject.layer else ""
    command = [sys.executable, "-S", "-B", "-c", RUNNER, str(subject.task), layer, str(runtime), json.dumps(event)]
    output = subprocess.run(
        [*command, str(warm)],
        env=subject.environment,
        cwd=subject.task,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if output.returncode != 0:
        raise RuntimeError(f"{subject.label} ({subject.variant}) failed:\n{output.stderr[-3000:]}")
    return dict(json.loads(output.stdout.strip().splitlines()[-1]))


def environment(stack: LocalStack, logical_id: str) -> dict[str, str]:
    env = stack.function_environment(logical_id)
    env.pop("AWS_SAM_LOCAL", None)  # keep what a deployed function sees; tracing stays off below
    env.update({"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING", "LOG_LEVEL": "WARNING"})
    return env


def subjects(stack: LocalStack, built: Path, baseline: Path, scratch: Path) -> list[Subject]:
    layer = built / "SharedLayer" / "python"
    variants = {
        "shipped": as_deployed(layer, scratch / "shipped" / "opt"),
        "warm cache": without_bytecode(layer, scratch / "warm" / "opt"),
        "sources": as_deployed(without_bytecode(layer, scratch / "src-layer"), scratch / "sources" / "opt"),
    }
    chosen: list[Subject] = []
    for logical_id, spec in sorted(stack.application.functions.items()):
        folder = spec.code_dir.name
        event = import_event(stack) if folder == "audience_import" else EVENTS.get(folder) or first_sample(folder)
        env = environment(stack, logical_id)
        artifact = built / logical_id
        tasks = {
            "shipped": as_deployed(artifact, scratch / "shipped" / logical_id),
            "warm cache": without_bytecode(artifact, scratch / "warm" / logical_id),
            "sources": as_deployed(
                without_bytecode(artifact, scratch / f"src-{logical_id}"), scratch / "sources" / logical_id
            ),
        }
        for variant, task in tasks.items():
            chosen.append(Subject(logical_id, variant, task, variants[variant], env, event))
    baseline_env = {**environment(stack, "SignupFunction"), "MAILCHIMP_LIST_ID": DEFAULT_LIST_ID}
    baseline_task = as_deployed(baseline / "BaselineSignupFunction", scratch / "shipped" / "baseline")
    chosen.append(Subject("tutorial baseline", "shipped", baseline_task, None, baseline_env, signup_event))
    return chosen


def warm_caches(chosen: list[Subject], runtime: Path) -> None:
    """Python writes its own bytecode into the warm-cache copies once (timestamps, as a venv has)."""
    for subject in chosen:
        if subject.variant == "warm cache":
            for folder in (subject.task, subject.layer):
                subprocess.run([sys.executable, "-m", "compileall", "-q", str(folder)], check=True)


def main() -> None:
    if sys.version_info[:2] != (3, 13):
        print(f"  skipped: needs Python 3.13 (Lambda's runtime), this is {platform.python_version()}")
        return
    scratch = Path(tempfile.mkdtemp(prefix="coldstart-"))
    env = {**os.environ, "LAYER_PLATFORM": host_layer_platform(), "SAM_CLI_TELEMETRY": "0"}
    print("  building template.yaml and the tutorial baseline with sam build ...", flush=True)
    built = sam_build(REPO_ROOT / "template.yaml", scratch / "ours", env)
    baseline = sam_build(BASELINE_TEMPLATE, scratch / "baseline", env)
    runtime = runtime_folder(scratch / "runtime")
    try:
        with (
            response_url_stand_in(),
            LocalStack(
                REPO_ROOT / "template.yaml",
                api_port=0,
                sandbox_port=0,
                moto_port=0,
                serve_api=False,
                poll_queues=False,
                moto_in_child_process=True,
                log_sink=lambda *_: None,
            ) as stack,
        ):
            chosen = subjects(stack, built, baseline, scratch / "run")
            warm_caches(chosen, runtime)
            sandbox = SandboxClient(stack.sandbox_url or "")
            runs: dict[tuple[str, str], list[dict[str, Any]]] = {(s.label, s.variant): [] for s in chosen}
            for _ in range(RUNS):
                for subject in chosen:  # interleaved, so drift hits every subject alike
                    runs[(subject.label, subject.variant)].append(run_once(subject, runtime, sandbox))
            signup = next(s for s in chosen if s.label == "SignupFunction" and s.variant == "shipped")
            before = sandbox.stats()["connections_opened"]
            warm = run_once(signup, runtime, sandbox, warm=WARM_SIGNUPS)
            after = sandbox.stats()["connections_opened"]
    finally:
        for folder in (scratch / "run" / "shipped", scratch / "run" / "sources"):
            for child in folder.iterdir() if folder.exists() else []:
                remove(child)
        shutil.rmtree(scratch, ignore_errors=True)
    figures = report(runs, warm, after - before)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2))


def report(runs: dict[tuple[str, str], list[dict[str, Any]]], warm: dict[str, Any], connections: int) -> dict[str, Any]:
    def median(key: tuple[str, str], part: str) -> float:
        values = [run["import"] + run["first"] if part == "total" else run[part] for run in runs[key]]
        return statistics.median(values) * 1000

    labels = sorted({label for label, _ in runs if label != "tutorial baseline"})
    print(f"  Python {platform.python_version()}, {platform.machine()}; median of {RUNS} fresh processes, ms")
    columns = f"{'import':>8}{'first':>8}{'total':>8}  {'warm-cache import':>18}  {'ratio':>6}  {'sources import':>15}"
    print(f"  {'function':<34}{columns}")
    table: dict[str, Any] = {}
    for label in [*labels, "tutorial baseline"]:
        shipped = (label, "shipped")
        row = {part: median(shipped, part) for part in ("import", "first", "total")}
        line = f"  {label:<34}{row['import']:8.0f}{row['first']:8.0f}{row['total']:8.0f}"
        if (label, "warm cache") in runs:
            row["warm_cache_import"] = median((label, "warm cache"), "import")
            row["sources_import"] = median((label, "sources"), "import")
            row["import_ratio"] = row["import"] / row["warm_cache_import"]
            line += f"  {row['warm_cache_import']:18.0f}  {row['import_ratio']:6.2f}  {row['sources_import']:15.0f}"
        table[label] = row
        print(line)
    worst = max(table[label]["import_ratio"] for label in labels)
    signup_ratio = table["SignupFunction"]["total"] / table["tutorial baseline"]["total"]
    print(
        f"  import shipped / warm cache: worst {worst:.2f} (target <= {IMPORT_TARGET})"
        f" {'OK' if worst <= IMPORT_TARGET else 'MISS'}"
    )
    print(
        f"  signup / tutorial baseline, import + first signup: {signup_ratio:.2f} (target <= {SIGNUP_TARGET})"
        f" {'OK' if signup_ratio <= SIGNUP_TARGET else 'MISS'}"
    )
    statuses_ok = all(status == 200 for status in warm["statuses"])
    print(
        f"  warm: {WARM_SIGNUPS} sequential signups after the first opened {connections} connection(s)"
        f" (target <= 2) {'OK' if connections <= 2 and statuses_ok else 'MISS'}"
    )
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "runs": RUNS,
        "functions": table,
        "worst_import_ratio": worst,
        "signup_ratio": signup_ratio,
        "warm_signups": WARM_SIGNUPS,
        "warm_connections": connections,
        "warm_statuses_ok": statuses_ok,
    }


if __name__ == "__main__":
    main()
