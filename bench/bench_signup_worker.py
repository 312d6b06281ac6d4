"""How the signup worker should apply queued signups: one ``PUT`` per member, or batch subscribe.

Measured to choose between them. Same workload for every strategy, against the sandbox in
its own process with Mailchimp's limits (10 connections, 50 ms per call):

* 1,000 queued signups; 10% of them are people who are already subscribed, half carry a tag;
* ``put x1``: the worker's upsert (``chimpbridge.logic.signup_apply.apply_signup``), one at a
  time (the baseline: Powertools' BatchProcessor without threads);
* ``put x6``: the same upsert, 6 at once (the template's SIGNUP_WORKER_CONCURRENCY 3 x
  MaximumConcurrency 2);
* ``batch 10 x2`` / ``batch 500 x2``: ``POST /lists/{id}`` (batch subscribe) with 10 (SQS's
  BatchSize) or 500 (its maximum) members per call, 2 calls at once, ``update_existing: false``
  so nobody's status is overwritten; members that exist then need the ``PUT`` anyway, and
  tags need the tags endpoint (batch subscribe takes none);
* ``plain ...``: the case batch subscribe is made for (only new people, no tags);
* ``batch naive``: batch subscribe with ``update_existing: true``, the only way to make it
  update existing members in one call: it has no ``status_if_new`` and overwrites the status.

Printed per strategy: seconds, signups/s (and the ratio to ``put x1``), Mailchimp requests,
subscribed people turned pending, tags missing. Results in bench/results/signup_worker.json.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from bench.support import sandbox_and_moto
from chimpbridge import clients, secrets, settings
from chimpbridge.errors import MailchimpApiError
from chimpbridge.logic.signup_apply import apply_signup, subscriber_hash, upsert_body
from chimpbridge.models.signup import Signup
from sandbox.mailchimp import DEFAULT_LIST_ID, MARKETING_API_KEY
from sandbox.mailchimp.client import SandboxClient

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "signup_worker.json"
SIGNUPS = int(os.environ.get("BENCH_SIGNUP_WORKER_SIGNUPS", "1000"))
SEQUENTIAL_SIGNUPS = max(50, SIGNUPS // 5)  # one at a time is slow; its rate is what matters
EXISTING_SHARE = 0.10
TAGGED_SHARE = 0.5
FAULTS = {"latency_ms": 50, "max_connections": 10}


@dataclass
class Outcome:
    strategy: str
    signups: int
    seconds: float
    requests: int
    subscribed_turned_pending: int
    tags_missing: int
    errors: int

    @property
    def per_second(self) -> float:
        return self.signups / self.seconds


def workload(run: str, count: int, *, plain: bool) -> list[Signup]:
    signups = []
    for index in range(count):
        tags = ["newsletter"] if not plain and index % int(1 / TAGGED_SHARE) == 0 else []
        signups.append(
            Signup(
                list_id=DEFAULT_LIST_ID,
                email=f"worker-{run}-{index}-{uuid.uuid4().hex[:6]}@example.net",
                merge_fields={"FNAME": f"Person {index}"},
                tags=tags,
                language="en",
                ip_signup="203.0.113.7",
                timestamp_signup=datetime.now(UTC).replace(microsecond=0),
            )
        )
    return signups


def make_existing_subscribers(sandbox: SandboxClient, signups: list[Signup], *, plain: bool) -> set[str]:
    """Subscribe every 10th person beforehand (no faults while doing it)."""
    lists = sandbox.marketing_sdk().lists
    share = int(1 / EXISTING_SHARE)
    existing = set() if plain else {signup.email for index, signup in enumerate(signups) if index % share == 0}
    for email in existing:
        lists.set_list_member(DEFAULT_LIST_ID, subscriber_hash(email), {"email_address": email, "status": "subscribed"})
    return existing


def put_each(signups: list[Signup], threads: int) -> int:
    errors = 0

    def one(signup: Signup) -> bool:
        try:
            apply_signup(signup, skip_merge_validation=True)
        except MailchimpApiError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=threads) as pool:
        errors = sum(1 for ok in pool.map(one, signups) if not ok)
    return errors


def batch_item(signup: Signup, status: str) -> dict[str, Any]:
    item = upsert_body(signup)
    item.pop("status_if_new")
    item.pop("tags", None)  # not part of batch subscribe
    item["status"] = status
    return item


def batch_subscribe(signups: list[Signup], size: int, *, naive: bool = False) -> int:
    lists = clients.marketing().lists
    errors = 0

    def one_batch(chunk: list[Signup]) -> int:
        body = {
            "members": [batch_item(signup, signup.status_if_new) for signup in chunk],
            "update_existing": naive,
        }
        try:
            result = lists.batch_list_members(DEFAULT_LIST_ID, body, skip_merge_validation="true")
        except MailchimpApiError:
            return len(chunk)
        failed = 0
        by_email = {signup.email.lower(): signup for signup in chunk}
        created = {member["email_address"].lower() for member in result.get("new_members", [])}
        for email in created:
            signup = by_email[email]
            if signup.tags:
                tags = {"tags": [{"name": tag, "status": "active"} for tag in signup.tags]}
                lists.update_list_member_tags(DEFAULT_LIST_ID, subscriber_hash(email), tags)
        for error in result.get("errors", []):
            signup = by_email.get(str(error.get("email_address", "")).lower())
            if signup is not None and error.get("error_code") == "ERROR_CONTACT_EXISTS":
                apply_signup(signup, skip_merge_validation=True)  # existing members need the upsert anyway
            else:
                failed += 1
        return failed

    chunks = [signups[start : start + size] for start in range(0, len(signups), size)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        errors = sum(pool.map(one_batch, chunks))
    return errors


def check(sandbox: SandboxClient, signups: list[Signup], existing: set[str]) -> tuple[int, int]:
    lists = sandbox.marketing_sdk().lists
    turned_pending = 0
    tags_missing = 0
    for signup in signups:
        member = lists.get_list_member(DEFAULT_LIST_ID, subscriber_hash(signup.email), fields=["status", "tags"])
        if signup.email in existing and member["status"] != "subscribed":
            turned_pending += 1
        names = {tag["name"] for tag in member.get("tags", [])}
        tags_missing += sum(1 for tag in signup.tags if tag not in names)
    return turned_pending, tags_missing


def measure(
    sandbox: SandboxClient,
    strategy: str,
    count: int,
    apply: Callable[[list[Signup]], int],
    run: str,
    *,
    plain: bool = False,
) -> Outcome:
    signups = workload(run, count, plain=plain)
    sandbox.faults()
    existing = make_existing_subscribers(sandbox, signups, plain=plain)
    sandbox.faults(**FAULTS)
    requests_before = sandbox.stats()["requests"]
    started = time.perf_counter()
    errors = apply(signups)
    seconds = time.perf_counter() - started
    used = sandbox.stats()["requests"] - requests_before
    sandbox.faults()
    turned_pending, tags_missing = check(sandbox, signups, existing)
    return Outcome(strategy, count, seconds, used, turned_pending, tags_missing, errors)


def configure(sandbox_url: str, moto_url: str) -> None:
    secret = boto3.client(
        "secretsmanager",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_secret(Name=f"bench/{uuid.uuid4()}", SecretString=json.dumps({"api_key": MARKETING_API_KEY}))
    os.environ.update(
        AWS_ENDPOINT_URL=moto_url,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        MAILCHIMP_SECRET_ARN=secret["ARN"],
        MAILCHIMP_API_URL=f"{sandbox_url}/3.0",
        MAILCHIMP_MAX_CONNECTIONS="8",
        MAILCHIMP_RETRY_BUDGET_SECONDS="15",
        MAILCHIMP_MAX_ATTEMPTS="5",
        POWERTOOLS_LOG_LEVEL="ERROR",
    )
    settings.clear()
    secrets.clear_cache()
    clients.clear()


def report(outcomes: list[Outcome]) -> None:
    baseline = next(outcome for outcome in outcomes if outcome.strategy == "put x1")
    print(f"  {SIGNUPS} queued signups ({EXISTING_SHARE:.0%} already subscribed, {TAGGED_SHARE:.0%} tagged);")
    print(f"  sandbox: {FAULTS['max_connections']} connections, {FAULTS['latency_ms']} ms per call")
    print("  plain: the same count, all new people and no tags (what batch subscribe is made for)")
    print("  strategy        signups  seconds  signups/s  vs put x1  requests  subscribed->pending  tags missing")
    for outcome in outcomes:
        print(
            f"  {outcome.strategy:<15} {outcome.signups:>8} {outcome.seconds:>8.1f} {outcome.per_second:>10.1f}"
            f" {outcome.per_second / baseline.per_second:>9.1f}x {outcome.requests:>9}"
            f" {outcome.subscribed_turned_pending:>20} {outcome.tags_missing:>13}"
        )


def main() -> None:
    with sandbox_and_moto() as (sandbox, moto_url):
        configure(sandbox.url, moto_url)
        outcomes = [
            measure(sandbox, "put x1", SEQUENTIAL_SIGNUPS, lambda s: put_each(s, 1), "p1"),
            measure(sandbox, "put x6", SIGNUPS, lambda s: put_each(s, 6), "p6"),
            measure(sandbox, "batch 10 x2", SIGNUPS, lambda s: batch_subscribe(s, 10), "b10"),
            measure(sandbox, "batch 500 x2", SIGNUPS, lambda s: batch_subscribe(s, 500), "b500"),
            measure(sandbox, "batch naive", SIGNUPS, lambda s: batch_subscribe(s, 500, naive=True), "bn"),
            # The case batch subscribe is made for: only new people, no tags (a bulk import).
            measure(sandbox, "plain put x6", SIGNUPS, lambda s: put_each(s, 6), "pp6", plain=True),
            measure(sandbox, "plain batch 500", SIGNUPS, lambda s: batch_subscribe(s, 500), "pb500", plain=True),
        ]
    report(outcomes)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps([asdict(outcome) | {"per_second": outcome.per_second} for outcome in outcomes], indent=2)
    )


if __name__ == "__main__":
    main()
