"""How fast the audience export reads an audience, against the floor Mailchimp's limits allow.

The scenario: the Mailchimp sandbox in its own process with 500 ms latency per request and
Mailchimp's cap of 10 connections; S3 and DynamoDB are a moto server in a third process. The
export function (functions/audience_export/app.py, handler and all) runs a full export, driven
as the state machine drives it, with EXPORT_CONCURRENCY=8, in a child process of its own (so its
peak RSS is its own). Timed from the handler call to the end: module imports count as the Lambda
init phase and are left out; client creation, the secret, S3 and DynamoDB calls are in.

The floor is ``ceil(pages / concurrency) x latency``: pages go out at most 8 at a time and each
takes 500 ms, so 20 pages take 3 rounds (8 + 8 + 4) whatever the client does. Pages are counted
with the page size the export really asks for.

Scaled setting (the default, ``BENCH_EXPORT_SCALE=100``): each size is seeded with 1/100 of its
members and the export asks for pages of 10 (1000/100), so every size has the page count, hence
the floor, of the named size at Mailchimp's 1000 per page, while parsing and encoding cost
next to nothing: what is measured is how the export spends its rounds and its fixed costs
(DynamoDB, S3, the secret). ``BENCH_EXPORT_SCALE=1`` runs the full sizes (then the export's CPU
and the sandbox's share the machine's cores, and peak RSS is the real one).

Printed per size: seconds, ratio to the floor, peak RSS, requests (pages asked for, the merge
fields), the most at once. Targets: within 1.15x of the floor, peak RSS under 200 MB. Results
also go to bench/results/export.json. ``BENCH_EXPORT_SIZES=20000`` runs one size,
``BENCH_EXPORT_FORMAT=jsonl`` exports JSON Lines, ``BENCH_EXPORT_TUTORIAL=1`` also runs the
baseline, the export the way the tutorials write it: the official SDK paging sequentially, all
fields, a new connection per call (the SDK's module-level ``requests.get``), members collected in
a list, then written as gzip CSV and uploaded to S3.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

import boto3
import psutil

from bench.bench_sandbox import cpu_seconds
from bench.support import (
    REPO_ROOT,
    FifteenMinuteContext,
    FunctionBench,
    load_function,
    sandbox_and_moto_processes,
    write_result,
)
from chimpbridge.logic.export import paging
from sandbox.mailchimp import MARKETING_API_KEY

RESULTS = REPO_ROOT / "bench" / "results" / "export.json"
SIZES = [int(size) for size in os.environ.get("BENCH_EXPORT_SIZES", "5000,20000,50000,200000").split(",")]
EXPORT_FORMAT = os.environ.get("BENCH_EXPORT_FORMAT", "csv")
WITH_TUTORIAL = os.environ.get("BENCH_EXPORT_TUTORIAL", "0") != "0"
SCALE = int(os.environ.get("BENCH_EXPORT_SCALE", "100"))
LATENCY_SECONDS = 0.5
MAX_CONNECTIONS = 10
CONCURRENCY = 8
PAGE_SIZE = paging.PAGE_SIZE // SCALE  # what the export asks for (the child sets it)
TARGET_FLOOR_RATIO = 1.15
TARGET_RSS_BYTES = 200 * 1024 * 1024


@dataclass
class Run:
    way: str
    members: int
    seconds: float
    peak_rss_bytes: int
    sandbox_cpu_seconds: float
    requests: int
    max_concurrent_requests: int
    rejected_over_limit: int
    invocations: int = 1
    client_cpu_seconds: float = 0.0

    @property
    def sandbox_cpu_share(self) -> float:
        return self.sandbox_cpu_seconds / self.seconds


def seeded(members: int) -> int:
    """Members the sandbox really holds for a size (scaled setting: 1/SCALE of them)."""
    return members // SCALE


def pages(members: int) -> int:
    return math.ceil(seeded(members) / PAGE_SIZE)


def floor_seconds(members: int) -> float:
    """Rounds of ``CONCURRENCY`` pages at once, each round one latency."""
    return math.ceil(pages(members) / CONCURRENCY) * LATENCY_SECONDS


# ---------------------------------------------------------------- the two child processes
def child_export(list_id: str) -> dict[str, Any]:
    """In the child: the export function, called until the job is done."""
    module = load_function("audience_export")
    paging.PAGE_SIZE = PAGE_SIZE
    job: dict[str, Any] = {"audiences": [list_id], "mode": "full", "format": EXPORT_FORMAT}
    started = time.perf_counter()
    invocations = 0
    while not job.get("done"):
        job = module.lambda_handler(job, FifteenMinuteContext("bench-audience-export", 1024))
        invocations += 1
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": job["results"][0]["rows"],
        "invocations": invocations,
        "cpu_seconds": time.process_time(),
    }


def child_tutorial(list_id: str, sandbox_url: str) -> dict[str, Any]:
    """In the child: the tutorial way, official SDK as its README shows it."""
    import mailchimp_marketing  # noqa: PLC0415 - only the child needs it

    client = mailchimp_marketing.Client()
    client.set_config({"api_key": MARKETING_API_KEY, "server": "us21"})
    client.api_client.host = f"{sandbox_url}/3.0"
    started = time.perf_counter()
    members: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = client.lists.get_list_members_info(list_id, count=PAGE_SIZE, offset=offset)
        members.extend(page["members"])
        offset += PAGE_SIZE
        if offset >= page["total_items"]:
            break
    with tempfile.TemporaryFile() as target:
        with gzip.GzipFile(fileobj=target, mode="wb") as compressed:
            text = io.TextIOWrapper(compressed, encoding="utf-8", newline="")
            writer = csv.writer(text)
            writer.writerow(["Email Address", "First Name", "Last Name", "Status", "Last Changed"])
            for member in members:
                merge = member["merge_fields"]
                row = [member["email_address"], merge.get("FNAME"), merge.get("LNAME")]
                writer.writerow([*row, member["status"], member["last_changed"]])
            text.flush()
        target.seek(0)
        boto3.client("s3").upload_fileobj(target, os.environ["EXPORT_BUCKET"], f"tutorial/{list_id}.csv.gz")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": len(members), "invocations": 1, "cpu_seconds": time.process_time()}


def child_main(argv: list[str]) -> None:
    way, list_id, sandbox_url = argv
    result = child_export(list_id) if way == "export" else child_tutorial(list_id, sandbox_url)
    write_result(result)


# ---------------------------------------------------------------- the parent
class Bench(FunctionBench):
    def __init__(self, sandbox_url: str, sandbox: psutil.Process, moto_url: str) -> None:
        super().__init__(sandbox_url, sandbox, moto_url, ["StateTable", "ExportBucket"])
        self.table, self.bucket = self.resources["StateTable"].name, self.resources["ExportBucket"].name

    def measure(self, way: str, members: int) -> Run:
        list_id = self.audience(count=seeded(members), seed=7)
        self.sandbox_call("PUT", "/faults", {"latency_ms": LATENCY_SECONDS * 1000, "max_connections": MAX_CONNECTIONS})
        environment = self.environment(
            MAILCHIMP_READ_TIMEOUT_SECONDS="60",
            STATE_TABLE=self.table,
            EXPORT_BUCKET=self.bucket,
            EXPORT_CONCURRENCY=str(CONCURRENCY),
            EXPORT_SETTLE_SECONDS="0",
        )
        cpu_before = cpu_seconds(self.sandbox)
        result = self.run_child(
            "bench.bench_export", [way, list_id, self.sandbox_url], environment, f"{way} at {members:,}"
        )
        sandbox_cpu = cpu_seconds(self.sandbox) - cpu_before
        if result["rows"] != seeded(members):
            raise RuntimeError(f"{way} exported {result['rows']:,} members of {seeded(members):,}")
        stats = self.sandbox_call("GET", "/stats")
        self.sandbox_call("PUT", "/faults", {})
        return Run(
            way=way,
            members=members,
            seconds=result["seconds"],
            peak_rss_bytes=result["peak_rss_bytes"],
            sandbox_cpu_seconds=sandbox_cpu,
            requests=stats["requests"],
            max_concurrent_requests=stats["max_concurrent_requests"],
            rejected_over_limit=stats["rejected_over_limit"],
            invocations=result["invocations"],
            client_cpu_seconds=result["cpu_seconds"],
        )


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISS"


def report(runs: list[Run]) -> None:
    scaled = f"scaled 1/{SCALE}: " if SCALE > 1 else ""
    print(
        f"sandbox in its own process: {LATENCY_SECONDS * 1000:.0f} ms per request, cap {MAX_CONNECTIONS} "
        f"connections; export ({EXPORT_FORMAT}) concurrency {CONCURRENCY}; {scaled}pages of {PAGE_SIZE}; "
        "S3/DynamoDB on moto"
    )
    for members in SIZES:
        export = next(run for run in runs if run.way == "export" and run.members == members)
        tutorial = next((run for run in runs if run.way == "tutorial" and run.members == members), None)
        floor = floor_seconds(members)
        held = f"{seeded(members):,} members seeded, " if SCALE > 1 else ""
        print(
            f"  {members:,} members ({held}{pages(members)} pages, {math.ceil(pages(members) / CONCURRENCY)} "
            f"rounds of {CONCURRENCY}), floor {floor:.2f} s"
        )
        for run in (export, tutorial):
            if run is None:
                continue
            print(
                f"    {run.way:<8} {run.seconds:7.2f} s  {run.seconds / floor:5.2f}x floor  "
                f"peak RSS {run.peak_rss_bytes / 2**20:5.0f} MiB  own CPU {run.client_cpu_seconds:5.1f} s  "
                f"sandbox CPU {run.sandbox_cpu_share:4.0%} of one core  requests {run.requests}  "
                f"max concurrent {run.max_concurrent_requests}  over cap {run.rejected_over_limit}"
            )
        ratio = export.seconds / floor
        floor_ok = verdict(ratio <= TARGET_FLOOR_RATIO)
        rss_ok = verdict(export.peak_rss_bytes < TARGET_RSS_BYTES)
        print(
            f"    export vs floor {ratio:.2f}x (target <= {TARGET_FLOOR_RATIO}x: {floor_ok}); "
            f"peak RSS {export.peak_rss_bytes / 2**20:.0f} MiB (target < {TARGET_RSS_BYTES / 2**20:.0f} MiB: {rss_ok})"
        )


def main() -> None:
    runs: list[Run] = []
    with sandbox_and_moto_processes() as (sandbox_url, sandbox, moto_url):
        bench = Bench(sandbox_url, sandbox, moto_url)
        for members in SIZES:
            for way in ("export", "tutorial") if WITH_TUTORIAL else ("export",):
                runs.append(bench.measure(way, members))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            [
                {
                    **asdict(run),
                    "seeded_members": seeded(run.members),
                    "page_size": PAGE_SIZE,
                    "pages": pages(run.members),
                    "floor_seconds": floor_seconds(run.members),
                    "floor_ratio": run.seconds / floor_seconds(run.members),
                    "sandbox_cpu_share": run.sandbox_cpu_share,
                }
                for run in runs
            ],
            indent=2,
        )
    )
    report(runs)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child_main(sys.argv[2:])
    else:
        main()
