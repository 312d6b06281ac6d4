"""Mailchimp audience webhook: how fast Mailchimp gets its answer under a burst, against its 10 s
limit, and how many events reach the bus.

The local stack (the repository's template.yaml: API gateway, MailchimpWebhookFunction, the
event bus on moto in its own process) takes 2,000 deliveries from 50 concurrent senders (one
keep-alive HTTP client each), as Mailchimp sends them: form-encoded, one change each, with a
tenth of them repeated (Mailchimp delivers at least once), and a delivery not answered 200
sent again after 1, 2, 4 and 8 s (Mailchimp's 75 minutes, compressed). Measured: the answer time
(p50, p99, max) as the sender sees it, answers over 10 s (Mailchimp would retry them), the
function's own run time, events published per second, and what reached the bus, read back from
the bus's local "-published" queue: every change published (none lost), and how many were
published twice (same change_id: a publish whose answer was lost, then retried).

Results in bench/results/mailchimp_webhook.json. Tune with BENCH_WEBHOOK_DELIVERIES,
BENCH_WEBHOOK_SENDERS, BENCH_WEBHOOK_WORKERS. Local caveats, as for the registration hook: the
local stack runs BENCH_WEBHOOK_WORKERS execution environments on this machine's cores (Lambda
would give each concurrent sender its own), and every AWS call goes to moto, one Python process
much slower than EventBridge and DynamoDB.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from sandbox.stack.local_config import SECRET_SEEDS
from sandbox.stack.stack import LocalStack

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "mailchimp_webhook.json"
DELIVERIES = int(os.environ.get("BENCH_WEBHOOK_DELIVERIES", "2000"))
SENDERS = int(os.environ.get("BENCH_WEBHOOK_SENDERS", "50"))
# Local execution environments of the function. Lambda gives each concurrent sender its own; here
# they share this machine's cores with moto and the senders, so more than a few only queue up.
WORKERS = int(os.environ.get("BENCH_WEBHOOK_WORKERS", str(max(2, 2 * (os.cpu_count() or 1)))))
RETRY_DELAYS_SECONDS = (1, 2, 4, 8)
REPEATED_SHARE = 0.1
MAILCHIMP_LIMIT_MS = 10_000
TOKEN = SECRET_SEEDS["MailchimpWebhookSecret"]()["webhook_tokens"][0]
FORM = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "MailChimp"}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))] if ordered else float("nan")


def delivery(run_id: str, index: int) -> str:
    """A subscribe as Mailchimp posts it, about person ``index`` of the run."""
    email = f"bench-{run_id}-{index}@example.com"
    return urlencode(
        [
            ("type", "subscribe"),
            ("fired_at", "2026-01-15 09:30:00"),
            ("data[id]", uuid.uuid5(uuid.NAMESPACE_URL, email).hex[:10]),
            ("data[list_id]", "a6b5da1054"),
            ("data[email]", email),
            ("data[email_type]", "html"),
            ("data[merges][EMAIL]", email),
            ("data[merges][FNAME]", f"Person{index}"),
            ("data[merges][LNAME]", "Bench"),
            ("data[merges][INTERESTS]", "Weekly"),
            ("data[ip_signup]", "198.51.100.7"),
        ]
    )


def deliveries(run_id: str, count: int) -> list[str]:
    """``count`` deliveries: distinct changes, and a tenth of them delivered again, mixed in."""
    distinct = count - int(count * REPEATED_SHARE)
    bodies = [delivery(run_id, index) for index in range(distinct)]
    repeats = [bodies[index * 7 % distinct] for index in range(count - distinct)]
    mixed = list(bodies)
    for position, body in enumerate(repeats):
        mixed.insert(min(len(mixed), (position + 1) * 9), body)
    return mixed


def send(url: str, bodies: list[str]) -> tuple[list[float], Counter[int], float]:
    """SENDERS threads share the bodies in order, each retrying a delivery not answered 200 as
    Mailchimp does; returns every answer time, the statuses of every attempt, the seconds."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    work = iter(bodies)

    def attempt(session: requests.Session, body: str) -> int:
        started = time.perf_counter()
        try:
            status = session.post(url, data=body, headers=FORM, timeout=60).status_code
        except requests.RequestException:
            status = 599
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            latencies.append(elapsed)
            statuses[status] += 1
        return status

    def sender() -> None:
        session = requests.Session()
        while True:
            with lock:
                body = next(work, None)
            if body is None:
                return
            for delay in (*RETRY_DELAYS_SECONDS, None):
                if attempt(session, body) == 200 or delay is None:
                    break
                time.sleep(delay)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        for future in [pool.submit(sender) for _ in range(SENDERS)]:
            future.result()
    return latencies, statuses, time.perf_counter() - started


def published(stack: LocalStack, run_id: str) -> Counter[str]:
    """Events about this run's people on the bus's local "-published" queue, by change_id."""
    sqs = stack.client("sqs")
    tap = stack.resource("EventBus").attributes["TapQueueUrl"]
    seen: Counter[str] = Counter()
    empty = 0
    while empty < 3:
        messages = sqs.receive_message(QueueUrl=tap, MaxNumberOfMessages=10).get("Messages", [])
        empty = 0 if messages else empty + 1
        for message in messages:
            detail = json.loads(message["Body"])["detail"]
            if str(detail.get("email", "")).startswith(f"bench-{run_id}-"):
                seen[detail["change_id"]] += 1
        if messages:
            sqs.delete_message_batch(
                QueueUrl=tap,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        else:
            time.sleep(0.2)
    return seen


class FunctionDurations:
    """The function's own run time per invocation (the local runtime's REPORT lines)."""

    PATTERN = re.compile(r"^REPORT RequestId: \S+ Duration: ([\d.]+) ms")

    def __init__(self) -> None:
        self.recording = False
        self.values: list[float] = []

    def __call__(self, function_id: str, line: str) -> None:
        match = self.PATTERN.match(line)
        if self.recording and function_id == "MailchimpWebhookFunction" and match:
            self.values.append(float(match.group(1)))


def main() -> None:
    durations = FunctionDurations()
    with LocalStack(
        REPO_ROOT / "template.yaml",
        api_port=0,
        moto_port=0,
        start_sandbox=False,
        moto_in_child_process=True,
        poll_queues=False,
        log_sink=durations,
        max_workers_per_function=WORKERS,
    ) as stack:
        url = f"{stack.api_url}/webhooks/mailchimp/{TOKEN}"
        warm_id = "warm" + uuid.uuid4().hex[:6]
        cold_started = time.perf_counter()
        requests.post(url, data=delivery(warm_id, 0), headers=FORM, timeout=60)
        cold_ms = (time.perf_counter() - cold_started) * 1000
        send(url, [delivery(warm_id, index) for index in range(1, 3 * WORKERS)])
        published(stack, warm_id)

        run_id = uuid.uuid4().hex[:8]
        bodies = deliveries(run_id, DELIVERIES)
        distinct = len(set(bodies))
        durations.recording = True
        latencies, statuses, seconds = send(url, bodies)
        durations.recording = False
        events = published(stack, run_id)

    result: dict[str, Any] = {
        "deliveries": len(bodies),
        "distinct_changes": distinct,
        "senders": SENDERS,
        "workers": WORKERS,
        "cold_answer_ms": round(cold_ms, 1),
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
        "over_10s": sum(1 for value in latencies if value > MAILCHIMP_LIMIT_MS),
        "attempts": sum(statuses.values()),
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "function_p50_ms": round(percentile(durations.values, 0.5), 1),
        "function_p99_ms": round(percentile(durations.values, 0.99), 1),
        "seconds": round(seconds, 2),
        "events_published": sum(events.values()),
        "changes_published": len(events),
        "duplicates": sum(count - 1 for count in events.values()),
        "lost": distinct - len(events),
        "events_per_second": round(sum(events.values()) / seconds, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{result['deliveries']} deliveries ({distinct} changes) from {SENDERS} senders, {WORKERS} local workers:\n"
        f"  answer p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms "
        f"(Mailchimp's limit 10,000 ms; over it: {result['over_10s']}); {result['attempts']} attempts: "
        f"{result['statuses']}\n"
        f"  the function itself: p50 {result['function_p50_ms']} ms, p99 {result['function_p99_ms']} ms\n"
        f"  events on the bus: {result['events_published']} for {result['changes_published']} changes "
        f"(duplicates {result['duplicates']}, lost {result['lost']}), {result['events_per_second']} events/s "
        f"over {result['seconds']} s; first (cold) answer {result['cold_answer_ms']} ms"
    )
