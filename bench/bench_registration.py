"""Registration emails: how fast Kratos gets its answer, and how soon every email is out.

The whole product runs on the local stack (the repository's template.yaml: API gateway,
RegistrationHookFunction, EmailQueue, EmailSenderFunction; moto in its own process) with the
Mailchimp sandbox in its own process, set to Mailchimp's limits: at most 10
concurrent connections (beyond that, 429) and 100 ms per call.

* ``chimpbridge``: 50 Kratos-like callers (one keep-alive HTTP client each) post 1,000
  registration hooks (20 each) to ``POST /hooks/registration``. Measured: the hook's answer
  time (p50/p99) as the caller sees it, and the time from the first hook until all 1,000
  emails are in the sandbox's outbox, and how many there are (exactly 1,000 expected).
* ``direct`` (baseline, Ory's direct-to-Mandrill example): the same 50 callers post the same
  1,000 registrations straight to Mandrill's ``messages/send`` with the key in the body, and
  wait for it, as Kratos' web_hook does; on 429/5xx they retry like Kratos (3 attempts, 1 s
  then 2 s apart).

Printed: p50/p99 answer time, emails delivered and lost, seconds until the last email, and
the ratios. Results in bench/results/registration.json. Tune with BENCH_REGISTRATION_HOOKS,
BENCH_REGISTRATION_CALLERS, BENCH_REGISTRATION_WORKERS. Local caveats: Lambda gives each
concurrent caller its own execution environment, the local stack runs BENCH_REGISTRATION_WORKERS
per function on this machine's cores, so the answer time under 50 callers includes waiting for a
free worker (the hook function's own run time is printed too); and every AWS call goes to moto,
a single Python process that is much slower than SQS and DynamoDB (its SQS slows down further
as a queue backs up).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench.support import free_port, start_sandbox
from sandbox.mailchimp import TRANSACTIONAL_API_KEY
from sandbox.mailchimp.client import SandboxClient
from sandbox.stack.local_config import SECRET_SEEDS
from sandbox.stack.stack import LocalStack

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "registration.json"
HOOKS = int(os.environ.get("BENCH_REGISTRATION_HOOKS", "1000"))
CALLERS = int(os.environ.get("BENCH_REGISTRATION_CALLERS", "50"))
# Local execution environments per function (Lambda would give each concurrent caller one).
WORKERS = int(os.environ.get("BENCH_REGISTRATION_WORKERS", "16"))
SANDBOX_LIMITS = {"latency_ms": 100, "max_connections": 10}
SENDER_BATCH_SIZE = 5  # EmailSenderFunction's BatchSize in template.yaml
KRATOS_ATTEMPTS = 3
KRATOS_BACKOFF_SECONDS = (1.0, 2.0)
DEADLINE_SECONDS = 600
HOOK_KEY = SECRET_SEEDS["HookKeysSecret"]()["registration_hook_keys"][0]


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


@dataclass
class Run:
    name: str
    hooks: int
    callers: int
    answer_ms: list[float] = field(default_factory=list, repr=False)
    answer_statuses: Counter[Any] = field(default_factory=Counter)
    delivered: int = 0
    duplicates: int = 0
    seconds_to_all_emails: float | None = None
    seconds_to_last_answer: float = 0.0

    @property
    def p50(self) -> float:
        return percentile(self.answer_ms, 0.5)

    @property
    def p99(self) -> float:
        return percentile(self.answer_ms, 0.99)

    def summary(self) -> dict[str, Any]:
        document = asdict(self)
        document.pop("answer_ms")
        document["answer_statuses"] = {str(k): v for k, v in self.answer_statuses.items()}
        document.update(p50_ms=round(self.p50, 1), p99_ms=round(self.p99, 1), lost=self.hooks - self.delivered)
        return document


def registration(run_id: str, index: int) -> dict[str, Any]:
    identity_id = str(uuid.uuid4())
    return {
        "identity_id": identity_id,
        "email": f"bench-{run_id}-{index}@example.com",
        "name": {"first": f"Person{index}", "last": "Bench"},
        "locale": "en-GB",
        "flow": {"id": str(uuid.uuid4()), "type": "browser"},
        "transient_payload": {},
        "consents": {},
    }


def delivered_counts(sandbox: SandboxClient, run_id: str) -> Counter[str]:
    prefix = f"bench-{run_id}-"
    return Counter(
        recipient["email"]
        for message in sandbox.outbox()
        if message.get("status") == "sent"
        for recipient in message["to"]
        if recipient["email"].startswith(prefix)
    )


def drive(callers: int, bodies: list[dict[str, Any]], call: Any) -> tuple[list[float], Counter[int]]:
    """``callers`` threads, each with its own keep-alive session, share the bodies in order."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    work = iter(bodies)

    def caller() -> None:
        session = requests.Session()
        while True:
            with lock:
                body = next(work, None)
            if body is None:
                return
            started = time.perf_counter()
            status = call(session, body)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                statuses[status] += 1

    with ThreadPoolExecutor(max_workers=callers) as pool:
        for future in [pool.submit(caller) for _ in range(callers)]:
            future.result()
    return latencies, statuses


def wait_for_emails(sandbox: SandboxClient, run_id: str, expected: int, started: float, settle: bool) -> Counter[str]:
    """Poll the outbox until ``expected`` distinct people got an email (or the deadline)."""
    seen: Counter[str] = Counter()
    while time.perf_counter() - started < DEADLINE_SECONDS:
        seen = delivered_counts(sandbox, run_id)
        if len(seen) >= expected or settle:
            return seen
        time.sleep(0.25)
    return seen


def hook_burst(stack: LocalStack, run: Run, run_id: str) -> float:
    """The callers post ``HOOKS`` registrations; returns when the burst started."""
    url = f"{stack.api_url}/hooks/registration"

    def call(session: requests.Session, body: dict[str, Any]) -> int:
        headers = {"Authorization": HOOK_KEY, "Ory-Webhook-Trigger-ID": str(uuid.uuid4())}
        return session.post(url, json=body, headers=headers, timeout=60).status_code

    bodies = [registration(run_id, index) for index in range(HOOKS)]
    started = time.perf_counter()
    run.answer_ms, run.answer_statuses = drive(CALLERS, bodies, call)
    run.seconds_to_last_answer = time.perf_counter() - started
    return started


def run_hooks_only(stack: LocalStack) -> Run:
    """The hook under 50 callers, with nothing consuming the email queue meanwhile."""
    run = Run("chimpbridge hook alone", HOOKS, CALLERS)
    hook_burst(stack, run, uuid.uuid4().hex[:8])
    return run


def run_end_to_end(stack: LocalStack, sandbox: SandboxClient) -> Run:
    run_id = uuid.uuid4().hex[:8]
    run = Run("chimpbridge end to end", HOOKS, CALLERS)
    started = hook_burst(stack, run, run_id)
    counts = wait_for_emails(sandbox, run_id, HOOKS, started, settle=False)
    run.seconds_to_all_emails = time.perf_counter() - started if len(counts) >= HOOKS else None
    time.sleep(2)  # anything still in flight would show up as a duplicate now
    counts = delivered_counts(sandbox, run_id)
    run.delivered = len(counts)
    run.duplicates = sum(count - 1 for count in counts.values())
    return run


def run_direct(sandbox: SandboxClient) -> Run:
    """Ory's direct-to-Mandrill web_hook: the caller waits on messages/send, retrying like Kratos."""
    run_id = uuid.uuid4().hex[:8]
    run = Run("direct to Mandrill (Ory example)", HOOKS, CALLERS)
    url = f"{sandbox.url}/api/1.0/messages/send.json"

    def call(session: requests.Session, body: dict[str, Any]) -> int:
        payload = {
            "key": TRANSACTIONAL_API_KEY,
            "message": {
                "from_email": "hello@example.org",
                "subject": "Welcome",
                "html": f"<p>Hi {body['name']['first']},</p>",
                "to": [{"email": body["email"], "type": "to"}],
            },
        }
        status = 0
        for attempt in range(KRATOS_ATTEMPTS):
            try:
                status = session.post(url, json=payload, timeout=30).status_code
            except requests.RequestException:
                status = 599
            if status < 500 and status != 429:
                return status
            if attempt < len(KRATOS_BACKOFF_SECONDS):
                time.sleep(KRATOS_BACKOFF_SECONDS[attempt])
        return status

    bodies = [registration(run_id, index) for index in range(HOOKS)]
    started = time.perf_counter()
    run.answer_ms, run.answer_statuses = drive(CALLERS, bodies, call)
    run.seconds_to_last_answer = time.perf_counter() - started
    counts = delivered_counts(sandbox, run_id)
    run.delivered = len(counts)
    run.duplicates = sum(count - 1 for count in counts.values())
    run.seconds_to_all_emails = run.seconds_to_last_answer if run.delivered >= HOOKS else None
    return run


def run_sender_only(stack: LocalStack, sandbox: SandboxClient) -> Run:
    """The email sender alone: the same 1,000 emails handed to EmailSenderFunction in batches
    of 5, two batches at a time (its BatchSize and MaximumConcurrency), as Lambda's SQS
    poller would, so the local SQS emulator's speed is out of the measurement."""
    run = Run("chimpbridge sender alone", HOOKS, 2)
    warm = queued_records(stack, "warm-" + uuid.uuid4().hex[:6], 2)
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda record: stack.invoke("EmailSenderFunction", {"Records": [record]}), warm))
    run_id = uuid.uuid4().hex[:8]
    records = queued_records(stack, run_id, HOOKS)
    batches = [records[start : start + SENDER_BATCH_SIZE] for start in range(0, len(records), SENDER_BATCH_SIZE)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda batch: stack.invoke("EmailSenderFunction", {"Records": batch}), batches))
    run.seconds_to_last_answer = time.perf_counter() - started
    run.answer_statuses = Counter({"failed records": sum(len(result["batchItemFailures"]) for result in results)})
    counts = delivered_counts(sandbox, run_id)
    run.delivered = len(counts)
    run.duplicates = sum(count - 1 for count in counts.values())
    run.seconds_to_all_emails = run.seconds_to_last_answer if run.delivered >= HOOKS else None
    return run


def queued_records(stack: LocalStack, run_id: str, count: int) -> list[dict[str, Any]]:
    """SQS records holding what the hook queues (an EmailMessage each) for ``count`` people."""
    now = datetime.now(UTC).isoformat()
    records = []
    for index in range(count):
        body = registration(run_id, index)
        message = {
            "idempotency_key": f"registration:{run_id}-{index:06d}",
            "hook": "registration",
            "identity_id": body["identity_id"],
            "flow_id": body["flow"]["id"],
            "recipient": {"email": body["email"], "name": body["name"], "locale": body["locale"]},
            "queued_at": now,
        }
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": uuid.uuid4().hex,
                "body": json.dumps(message),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": stack.resource("EmailQueue").arn,
                "awsRegion": "us-east-1",
            }
        )
    return records


def single_caller_ms(stack: LocalStack, count: int = 50) -> float:
    """The hook's answer time with nobody else calling (warm)."""
    session = requests.Session()
    latencies = []
    for index in range(count):
        body = registration("single-" + uuid.uuid4().hex[:6], index)
        started = time.perf_counter()
        session.post(
            f"{stack.api_url}/hooks/registration",
            json=body,
            headers={"Authorization": HOOK_KEY, "Ory-Webhook-Trigger-ID": str(uuid.uuid4())},
            timeout=60,
        )
        latencies.append((time.perf_counter() - started) * 1000)
    return statistics.median(latencies)


def warm_up(stack: LocalStack) -> float:
    """Start the hook's local execution environments before measuring; returns the first
    (cold) answer time."""
    url = f"{stack.api_url}/hooks/registration"

    def one(index: int) -> float:
        started = time.perf_counter()
        # A cold start can exceed the function's timeout while many start at once on few
        # cores (a 502 here); the environment is warm for the next call anyway.
        requests.post(
            url,
            json=registration("warm-" + uuid.uuid4().hex[:6], index),
            headers={"Authorization": HOOK_KEY, "Ory-Webhook-Trigger-ID": str(uuid.uuid4())},
            timeout=60,
        )
        return (time.perf_counter() - started) * 1000

    cold = one(0)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(one, range(1, 3 * WORKERS)))
    return cold


def local_stack(durations: FunctionDurations, sandbox: SandboxClient, *, poll_queues: bool) -> LocalStack:
    return LocalStack(
        REPO_ROOT / "template.yaml",
        api_port=0,
        moto_port=0,
        sandbox_port=0,
        attach_sandbox_url=sandbox.url,
        moto_in_child_process=True,
        poll_queues=poll_queues,
        log_sink=durations,
        max_workers_per_function=WORKERS,
    )


class FunctionDurations:
    """The hook function's own run time per invocation (the REPORT lines of the local runtime),
    without the local gateway's overhead or the wait for a free local worker."""

    PATTERN = re.compile(r"^REPORT RequestId: \S+ Duration: ([\d.]+) ms")

    def __init__(self) -> None:
        self.recording = False
        self.values: list[float] = []

    def __call__(self, function_id: str, line: str) -> None:
        if self.recording and function_id == "RegistrationHookFunction":
            match = self.PATTERN.match(line)
            if match:
                self.values.append(float(match.group(1)))

    def percentile(self, share: float) -> float:
        return percentile(self.values, share)


def fmt(value: float | None, unit: str) -> str:
    return "never" if value is None else f"{value:,.1f} {unit}"


def row(run: Run, *, answers: bool = True, emails: bool = True) -> str:
    answer = f"{run.p50:>8.1f} ms {run.p99:>8.1f} ms" if answers else f"{'-':>11} {'-':>11}"
    lost = run.hooks - run.delivered
    email = (
        f"{run.delivered:>10} {lost:>6} {run.duplicates:>6} {fmt(run.seconds_to_all_emails, 's'):>14}"
        if emails
        else f"{'-':>10} {'-':>6} {'-':>6} {'-':>14}"
    )
    return f"{run.name:34} {answer} {email}"


def main() -> None:
    port = free_port()
    process = start_sandbox(port)
    sandbox = SandboxClient(f"http://127.0.0.1:{port}")
    durations = FunctionDurations()
    try:
        sandbox.faults(**SANDBOX_LIMITS)
        # 1. The hook alone, then the sender alone (no SQS emulator in either path).
        with local_stack(durations, sandbox, poll_queues=False) as stack:
            cold_ms = warm_up(stack)
            single_ms = single_caller_ms(stack)
            durations.recording = True
            hook_only = run_hooks_only(stack)
            durations.recording = False
            sender_only = run_sender_only(stack, sandbox)
        # 2. End to end, as the product runs locally (SQS pollers on moto).
        with local_stack(FunctionDurations(), sandbox, poll_queues=True) as stack:
            warm_up(stack)
            ours = run_end_to_end(stack, sandbox)
        # 3. The baseline.
        baseline = run_direct(sandbox)
        stats = sandbox.stats()
    finally:
        sandbox.faults()
        process.terminate()
        process.wait(timeout=10)

    limits = f"{SANDBOX_LIMITS['max_connections']} connections, {SANDBOX_LIMITS['latency_ms']} ms per call"
    print(f"{HOOKS} registrations, {CALLERS} concurrent Kratos-like callers; sandbox: {limits}")
    header = f"{'answer p50':>11} {'answer p99':>11} {'delivered':>10} {'lost':>6} {'dupes':>6} {'all emails in':>14}"
    print(f"{'':34} {header}")
    print(row(hook_only, emails=False))
    print(row(sender_only, answers=False))
    print(row(ours))
    print(row(baseline))
    print(
        f"answer time, direct / chimpbridge hook: p50 x{baseline.p50 / hook_only.p50:.2f}, "
        f"p99 x{baseline.p99 / hook_only.p99:.2f}"
    )
    for run in (sender_only, ours):
        if run.seconds_to_all_emails is not None:
            print(f"{run.name}: {HOOKS / run.seconds_to_all_emails:,.0f} emails/s (sandbox limit: 100/s)")
    print(f"baseline: {baseline.hooks - baseline.delivered} of {HOOKS} emails lost after Kratos' 3 attempts")
    print(
        f"hook function's own time under load: p50 {durations.percentile(0.5):.1f} ms, "
        f"p99 {durations.percentile(0.99):.1f} ms ({WORKERS} local workers); one caller, warm: {single_ms:.1f} ms; "
        f"cold start: {cold_ms:.0f} ms"
    )
    print(
        f"answers: hook {dict(hook_only.answer_statuses)}, end to end {dict(ours.answer_statuses)}, "
        f"direct {dict(baseline.answer_statuses)}"
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "hooks": HOOKS,
                "callers": CALLERS,
                "local_workers_per_function": WORKERS,
                "sandbox_limits": SANDBOX_LIMITS,
                "hook_alone": hook_only.summary(),
                "sender_alone": sender_only.summary(),
                "end_to_end": ours.summary(),
                "direct_to_mandrill": baseline.summary(),
                "hook_function_p50_ms": round(durations.percentile(0.5), 1),
                "hook_function_p99_ms": round(durations.percentile(0.99), 1),
                "single_caller_p50_ms": round(single_ms, 1),
                "cold_start_ms": round(cold_ms),
                "sandbox_stats": stats,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
