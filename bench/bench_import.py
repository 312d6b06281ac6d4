"""How fast the audience import applies a file, against the floor Mailchimp's limits allow.

The scenario: the Mailchimp sandbox in its own process with 100 ms latency per request and a
cap of 10 connections; S3, DynamoDB and EventBridge are a moto server in a third process. A CSV
of ``BENCH_IMPORT_ROWS`` new people (default 100,000; every tenth with two tags) lies in the
bucket under imports/<audience>/; the import function (functions/audience_import/app.py,
handler and all) runs it to the end into an empty audience, driven as the state machine drives
it (15-minute invocations, so a large file takes several), with IMPORT_MAX_CONNECTIONS=10, in a
child process of its own (so its peak RSS is its own). Module imports are left out of the time
(the Lambda init phase); the secret, S3, DynamoDB and EventBridge calls are in.

The floor is ``rows x latency / connections``: each new member is one PUT, at most 10 are on
the wire at once and each takes 100 ms, whatever the client does.

The baseline is the tutorial way: the official SDK as its README shows it, one
``POST /lists/{id}/members`` after another (a new connection each, the SDK's module-level
``requests``). It runs sequentially at one request per latency whatever the file's size, so it is
measured on the first ``BENCH_IMPORT_TUTORIAL_ROWS`` rows (default 1,000) and its rate is
applied to the whole file; the report says so.

Printed: seconds, rows per second, ratio to the floor, peak RSS, requests, the most at once and
any refused over the cap; the tutorial's rate and its time for the whole file. Targets: within
1.15x of the floor, peak RSS under 200 MB. Results also go to bench/results/import.json.

``BENCH_IMPORT_STACK=1`` runs instead the local stack end to end, as a person would: the
repository's template on loopback (sandbox without latency), ``BENCH_IMPORT_ROWS`` rows of
which 1% are bad and one names a subscribed member, uploaded to the stack's bucket; the
stack's EventBridge rule starts the import; timed until the summary appears, then checked:
every valid row in the audience, the subscribed member untouched, exactly the bad rows
reported, counts that add up.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
import uuid
from typing import Any

import boto3
import psutil

from bench.bench_sandbox import cpu_seconds
from bench.support import (
    REGION,
    REPO_ROOT,
    FifteenMinuteContext,
    FunctionBench,
    load_function,
    sandbox_and_moto_processes,
    write_result,
)
from sandbox.mailchimp import MARKETING_API_KEY

RESULTS = REPO_ROOT / "bench" / "results" / "import.json"
ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "100000"))
TUTORIAL_ROWS = int(os.environ.get("BENCH_IMPORT_TUTORIAL_ROWS", "1000"))
LATENCY_SECONDS = 0.1
MAX_CONNECTIONS = 10
CONNECTIONS = 10
TARGET_FLOOR_RATIO = 1.15
TARGET_RSS_BYTES = 200 * 1024 * 1024


def floor_seconds(rows: int) -> float:
    return rows * LATENCY_SECONDS / CONNECTIONS


def the_file(rows: int) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["Email Address", "First Name", "Last Name", "Tags"])
    for index in range(rows):
        tags = '"customer","imported"' if index % 10 == 0 else ""
        writer.writerow([f"bench.{index}@example.org", f"First{index}", f"Last{index}", tags])
    return text.getvalue().encode()


# ---------------------------------------------------------------- the child processes
def child_import(event_json: str) -> dict[str, Any]:
    """In the child: the import function, called until the job is done."""
    module = load_function("audience_import")
    job: dict[str, Any] = json.loads(event_json)
    started = time.perf_counter()
    invocations = 0
    while not job.get("done"):
        job = module.lambda_handler({**job, "execution": "bench"}, FifteenMinuteContext("bench-audience-import", 512))
        invocations += 1
    seconds = time.perf_counter() - started
    counts = job["result"]["counts"]
    return {"seconds": seconds, "rows": counts["created"], "invocations": invocations, "counts": counts}


def child_tutorial(list_id: str, sandbox_url: str, rows: int) -> dict[str, Any]:
    """In the child: the tutorial way, official SDK as its README shows it."""
    import mailchimp_marketing  # noqa: PLC0415 - only the child needs it

    client = mailchimp_marketing.Client()
    client.set_config({"api_key": MARKETING_API_KEY, "server": "us21"})
    client.api_client.host = f"{sandbox_url}/3.0"
    reader = csv.DictReader(io.StringIO(the_file(rows).decode()))
    started = time.perf_counter()
    added = 0
    for row in reader:
        body = {
            "email_address": row["Email Address"],
            "status": "pending",
            "merge_fields": {"FNAME": row["First Name"], "LNAME": row["Last Name"]},
        }
        if row["Tags"]:
            body["tags"] = [tag.strip('"') for tag in row["Tags"].split(",")]
        client.lists.add_list_member(list_id, body)
        added += 1
    return {"seconds": time.perf_counter() - started, "rows": added, "invocations": 1}


def child_main(argv: list[str]) -> None:
    way = argv[0]
    result = child_import(argv[1]) if way == "import" else child_tutorial(argv[1], argv[2], int(argv[3]))
    result["cpu_seconds"] = time.process_time()
    write_result(result)


# ---------------------------------------------------------------- the parent
class Bench(FunctionBench):
    def __init__(self, sandbox_url: str, sandbox: psutil.Process, moto_url: str) -> None:
        super().__init__(sandbox_url, sandbox, moto_url, ["StateTable", "ExportBucket", "EventBus"])
        self.table, self.bucket = self.resources["StateTable"].name, self.resources["ExportBucket"].name
        self.bus = self.resources["EventBus"].name
        self.s3 = boto3.client("s3", endpoint_url=moto_url, region_name=REGION)

    def _child(self, arguments: list[str]) -> dict[str, Any]:
        environment = self.environment(
            MAILCHIMP_READ_TIMEOUT_SECONDS="30",
            MAILCHIMP_RETRY_BUDGET_SECONDS="120",
            MAILCHIMP_MAX_ATTEMPTS="8",
            STATE_TABLE=self.table,
            IMPORT_BUCKET=self.bucket,
            EVENT_BUS_NAME=self.bus,
            IMPORT_MAX_CONNECTIONS=str(CONNECTIONS),
        )
        return self.run_child("bench.bench_import", arguments, environment, arguments[0])

    def measure(self, way: str, rows: int) -> dict[str, Any]:
        list_id = self.audience(count=0)
        arguments = [way, list_id, self.sandbox_url, str(rows)]
        if way == "import":
            key = f"imports/{list_id}/bench.csv"
            answer = self.s3.put_object(Bucket=self.bucket, Key=key, Body=the_file(rows))
            event = {"object": {"bucket": self.bucket, "key": key, "etag": answer["ETag"].strip('"'), "size": 0}}
            arguments = [way, json.dumps(event)]
        self.sandbox_call("PUT", "/faults", {"latency_ms": LATENCY_SECONDS * 1000, "max_connections": MAX_CONNECTIONS})
        cpu_before = cpu_seconds(self.sandbox)
        result = self._child(arguments)
        result["sandbox_cpu_seconds"] = cpu_seconds(self.sandbox) - cpu_before
        result.update(self.sandbox_call("GET", "/stats"))
        self.sandbox_call("PUT", "/faults", {})
        if result["rows"] != rows:
            raise RuntimeError(f"{way} added {result['rows']:,} members of {rows:,}")
        return result


def report(imported: dict[str, Any], tutorial: dict[str, Any]) -> dict[str, Any]:
    floor = floor_seconds(ROWS)
    ratio = imported["seconds"] / floor
    rate = ROWS / imported["seconds"]
    tutorial_rate = tutorial["rows"] / tutorial["seconds"]
    tutorial_whole = ROWS / tutorial_rate
    print(
        f"sandbox in its own process: {LATENCY_SECONDS * 1000:.0f} ms per request, cap {MAX_CONNECTIONS} "
        f"connections; import with IMPORT_MAX_CONNECTIONS={CONNECTIONS}; S3/DynamoDB/EventBridge on moto"
    )
    print(f"  {ROWS:,} new members, floor {floor:.0f} s ({ROWS / floor:.0f} rows/s)")
    print(
        f"    import   {imported['seconds']:8.1f} s  {rate:6.1f} rows/s  {ratio:5.2f}x floor  "
        f"peak RSS {imported['peak_rss_bytes'] / 2**20:4.0f} MiB  own CPU {imported['cpu_seconds']:5.1f} s  "
        f"invocations {imported['invocations']}  requests {imported['requests']}  "
        f"max concurrent {imported['max_concurrent_requests']}  over cap {imported['rejected_over_limit']}"
    )
    print(
        f"    tutorial {tutorial['seconds']:8.1f} s for {tutorial['rows']:,} rows (measured on that subset): "
        f"{tutorial_rate:5.1f} rows/s, so {tutorial_whole:,.0f} s for {ROWS:,}; "
        f"the import is {tutorial_whole / imported['seconds']:.1f}x faster"
    )
    print(
        f"    import vs floor {ratio:.2f}x (target <= {TARGET_FLOOR_RATIO}x: "
        f"{'OK' if ratio <= TARGET_FLOOR_RATIO else 'MISS'}); peak RSS "
        f"{imported['peak_rss_bytes'] / 2**20:.0f} MiB (target < {TARGET_RSS_BYTES / 2**20:.0f} MiB: "
        f"{'OK' if imported['peak_rss_bytes'] < TARGET_RSS_BYTES else 'MISS'})"
    )
    return {
        "rows": ROWS,
        "latency_ms": LATENCY_SECONDS * 1000,
        "max_connections": MAX_CONNECTIONS,
        "import_connections": CONNECTIONS,
        "floor_seconds": floor,
        "import": imported,
        "import_rows_per_second": rate,
        "import_floor_ratio": ratio,
        "tutorial": tutorial,
        "tutorial_rows_per_second": tutorial_rate,
        "tutorial_seconds_for_all_rows_estimated": tutorial_whole,
    }


def stack_end_to_end() -> None:
    """The local stack, upload to summary (the opt-in scenario of the module docstring)."""
    import gzip  # noqa: PLC0415 - this scenario only

    from sandbox.mailchimp.client import SandboxClient  # noqa: PLC0415
    from sandbox.stack.stack import LocalStack  # noqa: PLC0415

    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["Email Address", "First Name", "Last Name"])
    bad = set()
    for index in range(ROWS):
        email = f"stack.{index}@example.org"
        if index % 100 == 99:
            email, bad = f"stack {index} at example.org", bad | {index + 1}
        writer.writerow([email, f"First{index}", f"Last{index}"])
    with LocalStack(
        REPO_ROOT / "template.yaml",
        api_port=0,
        sandbox_port=0,
        moto_port=0,
        serve_api=False,
        moto_in_child_process=True,
        parameter_overrides={"ImportMaxConnections": "10"},
        log_sink=lambda source, line: None,
    ) as stack:
        sandbox = SandboxClient(str(stack.sandbox_url))
        list_id = uuid.uuid4().hex[:10]
        sandbox.seed(list_id, 0)
        sandbox.marketing_sdk().lists.add_list_member(
            list_id, {"email_address": "stack.0@example.org", "status": "subscribed"}
        )
        s3, bucket, key = stack.client("s3"), stack.resource("ExportBucket").name, f"imports/{list_id}/stack.csv.gz"
        started = time.perf_counter()
        s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(text.getvalue().encode()))
        while True:
            try:
                summary = json.loads(s3.get_object(Bucket=bucket, Key=f"{key}.summary.json")["Body"].read())
                break
            except s3.exceptions.NoSuchKey:
                time.sleep(1)
        seconds = time.perf_counter() - started
        results = gzip.decompress(s3.get_object(Bucket=bucket, Key=f"{key}.results.csv.gz")["Body"].read())
        skipped = {
            int(row["row"]) for row in csv.DictReader(io.StringIO(results.decode())) if row["outcome"] == "skipped"
        }
        total = sandbox.marketing_sdk().lists.get_list_members_info(list_id, count=1)["total_items"]
        her = sandbox.marketing_sdk().lists.get_list_member(list_id, "stack.0@example.org")["status"]
        counts = summary["counts"]
    adds_up = counts["created"] + counts["updated"] + counts["unchanged"] + counts["skipped"] == counts["rows"] == ROWS
    print(
        f"local stack end to end, no latency: {ROWS:,} rows ({len(bad):,} bad) uploaded to summary in {seconds:.0f} s"
    )
    print(
        f"  members {total:,} (valid rows {ROWS - len(bad):,}); subscribed member still {her}; "
        f"skipped rows exactly the bad ones: {skipped == bad}; counts add up: {adds_up}; "
        f"invocations {summary['invocations']}; {counts}"
    )


def main() -> None:
    if os.environ.get("BENCH_IMPORT_STACK", "0") != "0":
        stack_end_to_end()
        return
    with sandbox_and_moto_processes() as (sandbox_url, sandbox, moto_url):
        bench = Bench(sandbox_url, sandbox, moto_url)
        tutorial = bench.measure("tutorial", TUTORIAL_ROWS)
        imported = bench.measure("import", ROWS)
        results = report(imported, tutorial)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main()
