"""Signup burst: 2,000 signups from 100 concurrent clients, against Mailchimp's limits.

The whole product runs on the local stack (the repository's template.yaml: API gateway,
SignupFunction, SignupQueue, SignupWorkerFunction; moto in its own process) with the Mailchimp
sandbox in its own process, capped like Mailchimp at 10 concurrent connections (beyond that,
429) and answering in 50 ms.

* ``chimpbridge``: 100 clients (one keep-alive HTTP session each) post 2,000 JSON signups (20
  each) to ``POST /subscribe``. Measured: answers by status (no 5xx expected), the answer time
  p50/p99 as clients see it and the signup function's own run time p50/p99 (its REPORT lines),
  how many were queued (202), the seconds from the first signup until the audience holds all
  2,000, and that each address is there exactly once.
* ``tutorial baseline`` (bench/signup_tutorial_baseline/: SDK client per call, POST /members,
  no retry, no queue), behind the same route on the same local stack, same burst: how many
  signups it loses (answered with an error and never in the audience).

Local caveats: Lambda would give each concurrent client its own execution environment; the
local stack runs BENCH_SIGNUP_WORKERS environments per function on this machine's cores (more
than the sandbox's 10 connections, so the cap bites as it would in Lambda), warmed up before
the burst. Answer times include waiting for a free local environment; the function's own run
time does not. Results in bench/results/signup_burst.json.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.support import free_port, start_sandbox
from sandbox.mailchimp import DEFAULT_LIST_ID, MARKETING_API_KEY
from sandbox.mailchimp.client import SandboxClient
from sandbox.stack.stack import LocalStack

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "signup_burst.json"
SIGNUPS = int(os.environ.get("BENCH_SIGNUP_SIGNUPS", "2000"))
CLIENTS = int(os.environ.get("BENCH_SIGNUP_CLIENTS", "100"))
# Local execution environments per function (Lambda would give each concurrent client one).
WORKERS = int(os.environ.get("BENCH_SIGNUP_WORKERS", "16"))
SANDBOX_LIMITS = {"latency_ms": 50, "max_connections": 10}
DEADLINE_SECONDS = 600
BASELINE_SETTLE_SECONDS = 5
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))] if ordered else float("nan")


class FunctionDurations:
    """The function's own run time per invocation (the local runtime's REPORT lines)."""

    PATTERN = re.compile(r"^REPORT RequestId: \S+ Duration: ([\d.]+) ms")

    def __init__(self, function_id: str) -> None:
        self.function_id = function_id
        self.recording = False
        self.values: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, function_id: str, line: str) -> None:
        if self.recording and function_id == self.function_id:
            match = self.PATTERN.match(line)
            if match:
                with self._lock:
                    self.values.append(float(match.group(1)))


@dataclass
class Run:
    name: str
    signups: int
    answers: Counter[int] = field(default_factory=Counter)
    answer_ms: list[float] = field(default_factory=list)
    handler_ms: list[float] = field(default_factory=list)
    queued: int = 0
    in_audience: int = 0
    duplicated: int = 0
    seconds_to_full_audience: float | None = None
    burst_seconds: float = 0.0
    sandbox_stats: dict[str, Any] = field(default_factory=dict)
    dead_letters: int = 0

    @property
    def lost(self) -> int:
        return self.signups - self.in_audience

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.answers.items() if status >= 500)

    def summary(self) -> dict[str, Any]:
        return {
            **{key: value for key, value in asdict(self).items() if key not in ("answer_ms", "handler_ms")},
            "answers": {str(status): count for status, count in sorted(self.answers.items())},
            "answer_p50_ms": percentile(self.answer_ms, 0.5),
            "answer_p99_ms": percentile(self.answer_ms, 0.99),
            "handler_p50_ms": percentile(self.handler_ms, 0.5),
            "handler_p99_ms": percentile(self.handler_ms, 0.99),
            "lost": self.lost,
            "server_errors": self.server_errors,
        }


def addresses(run_id: str, count: int) -> list[str]:
    return [f"burst-{run_id}-{index}@example.org" for index in range(count)]


def post_all(api_url: str, emails: list[str], run: Run) -> None:
    chunks = [emails[start::CLIENTS] for start in range(CLIENTS)]
    lock = threading.Lock()

    def client(chunk: list[str]) -> None:
        session = requests.Session()
        session.headers.update({"User-Agent": BROWSER, "Origin": "https://example.org"})
        for email in chunk:
            started = time.perf_counter()
            try:
                status = session.post(f"{api_url}/subscribe", json={"email": email}, timeout=60).status_code
            except requests.RequestException as exc:
                status = 599  # no answer at all: the client saw a failure
                print(f"  client failure: {type(exc).__name__}: {exc}", flush=True)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                run.answers[status] += 1
                run.answer_ms.append(elapsed)
        session.close()

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        list(pool.map(client, chunks))


def audience(sandbox: SandboxClient, prefix: str) -> Counter[str]:
    """How many times each address with ``prefix`` is in the audience."""
    session = requests.Session()
    session.auth = ("user", MARKETING_API_KEY)
    seen: Counter[str] = Counter()
    offset = 0
    while True:
        page = session.get(
            f"{sandbox.marketing_url}/lists/{DEFAULT_LIST_ID}/members",
            params={"count": "1000", "offset": str(offset), "fields": "members.email_address,total_items"},
            timeout=60,
        ).json()
        seen.update(member["email_address"] for member in page["members"] if member["email_address"].startswith(prefix))
        offset += 1000
        if offset >= page["total_items"]:
            return seen


def warm_up(api_url: str) -> None:
    """Start every local execution environment before measuring (Lambda would have as many)."""

    def one(index: int) -> None:
        email = f"warmup-{uuid.uuid4().hex[:8]}-{index}@example.org"
        # A cold start may exceed the timeout while many start on few cores; warm afterwards anyway.
        requests.post(f"{api_url}/subscribe", json={"email": email}, headers={"User-Agent": BROWSER}, timeout=60)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(one, range(3 * WORKERS)))


def burst(stack: LocalStack, sandbox: SandboxClient, name: str, function_id: str, *, wait: bool) -> Run:
    durations: FunctionDurations = stack.log_sink  # type: ignore[assignment]
    warm_up(str(stack.api_url))
    run_id = uuid.uuid4().hex[:8]
    emails = addresses(run_id, SIGNUPS)
    run = Run(name=name, signups=SIGNUPS)
    sandbox.faults(**SANDBOX_LIMITS)
    stats_before = sandbox.stats()
    durations.recording = True
    started = time.perf_counter()
    post_all(str(stack.api_url), emails, run)
    run.burst_seconds = time.perf_counter() - started
    durations.recording = False
    run.handler_ms = list(durations.values)
    run.queued = run.answers.get(202, 0)
    prefix = f"burst-{run_id}-"
    deadline = started + (DEADLINE_SECONDS if wait else run.burst_seconds + BASELINE_SETTLE_SECONDS)
    while True:
        seen = audience(sandbox, prefix)
        if len(seen) >= SIGNUPS and run.seconds_to_full_audience is None:
            run.seconds_to_full_audience = time.perf_counter() - started
        if len(seen) >= SIGNUPS or time.perf_counter() > deadline:
            break
        time.sleep(0.5)
    run.in_audience = len(seen)
    run.duplicated = sum(count - 1 for count in seen.values())
    stats = sandbox.stats()
    run.sandbox_stats = {key: stats[key] - stats_before.get(key, 0) for key in ("requests", "rejected_over_limit")}
    run.sandbox_stats["max_concurrent_requests"] = stats["max_concurrent_requests"]
    sandbox.faults()
    if "SignupDeadLetterQueue" in stack.template.resources:
        attributes = stack.client("sqs").get_queue_attributes(
            QueueUrl=stack.resource("SignupDeadLetterQueue").url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        run.dead_letters = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    return run


def local_stack(template: Path, sandbox: SandboxClient, function_id: str) -> LocalStack:
    return LocalStack(
        template,
        api_port=0,
        moto_port=0,
        sandbox_port=0,
        attach_sandbox_url=sandbox.url,
        moto_in_child_process=True,
        log_sink=FunctionDurations(function_id),
        max_workers_per_function=WORKERS,
    )


def report(ours: Run, baseline: Run) -> None:
    def fmt(value: float | None) -> str:
        return "never" if value is None else f"{value:.1f} s"

    print(
        f"  {SIGNUPS} signups from {CLIENTS} clients; sandbox {SANDBOX_LIMITS['max_connections']} connections, "
        f"{SANDBOX_LIMITS['latency_ms']} ms; {WORKERS} local environments per function"
    )
    for run in (ours, baseline):
        summary = run.summary()
        print(
            f"  {run.name:<18} lost {run.lost:>4}  duplicated {run.duplicated}  5xx {run.server_errors:>4}"
            f"  answers {dict(sorted(run.answers.items()))}  queued {run.queued:>4}"
            f"  answer p50/p99 {summary['answer_p50_ms']:.0f}/{summary['answer_p99_ms']:.0f} ms"
            f"  handler p50/p99 {summary['handler_p50_ms']:.0f}/{summary['handler_p99_ms']:.0f} ms"
            f"  full audience after {fmt(run.seconds_to_full_audience)}"
            f"  Mailchimp requests {run.sandbox_stats.get('requests')}"
            f" ({run.sandbox_stats.get('rejected_over_limit')} over its connection cap)"
        )
    verdict = ours.lost == 0 and ours.duplicated == 0 and ours.server_errors == 0
    print(
        f"  chimpbridge: {'OK' if verdict else 'MISS'} (0 lost, 0 duplicated, 0 client-visible 5xx; dead letters "
        f"{ours.dead_letters}); the tutorial baseline lost {baseline.lost} of {SIGNUPS} "
        f"({baseline.lost / SIGNUPS:.0%}) under the same burst"
    )


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    process = start_sandbox(port)
    sandbox = SandboxClient(f"http://127.0.0.1:{port}")
    try:
        with local_stack(REPO_ROOT / "template.yaml", sandbox, "SignupFunction") as stack:
            ours = burst(stack, sandbox, "chimpbridge", "SignupFunction", wait=True)
        baseline_template = REPO_ROOT / "bench" / "signup_tutorial_baseline" / "template.yaml"
        with local_stack(baseline_template, sandbox, "BaselineSignupFunction") as stack:
            baseline = burst(stack, sandbox, "tutorial baseline", "BaselineSignupFunction", wait=False)
    finally:
        sandbox.close()
        process.terminate()
        process.wait(timeout=10)
    report(ours, baseline)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"ours": ours.summary(), "baseline": baseline.summary()}, indent=2))


if __name__ == "__main__":
    main()
