"""How fast the Mailchimp sandbox is, so that it is never the bottleneck of our benchmarks.

Starts ``python -m sandbox.mailchimp`` in its own process, seeds 1,000,000 members, then reads
pages of 1000 members sequentially over one keep-alive connection. Prints seed time, peak RSS
and pages/s (with the sandbox's CPU share) against its targets (20 pages/s on one
core, 60 s, 2 GiB) and against baselines measured in this run:

* pages: ``json.dumps`` of the same 1000-member page in-process (what any server that builds
  the page as Python objects pays before sending a byte);
* seed: MD5 of 1,000,000 addresses in-process (what the subscriber-hash index alone costs).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

import psutil
import requests

from bench.support import free_port, start_sandbox
from sandbox.mailchimp import DEFAULT_LIST_ID, MARKETING_API_KEY

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "sandbox.json"
MEMBERS = int(os.environ.get("BENCH_SANDBOX_MEMBERS", "1000000"))
PAGE_SIZE = 1000
PAGES = int(os.environ.get("BENCH_SANDBOX_PAGES", "300"))
TARGET_PAGES_PER_SECOND = 20
TARGET_SEED_SECONDS = 60
TARGET_RSS_BYTES = 2 * 1024**3


@dataclass
class PagingResult:
    label: str
    pages: int
    seconds: float
    sandbox_cpu_seconds: float
    megabytes: float

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds

    @property
    def cpu_share(self) -> float:
        return self.sandbox_cpu_seconds / self.seconds

    @property
    def pages_per_cpu_second(self) -> float:
        """Pages per second the sandbox would serve with one core all to itself."""
        return self.pages / self.sandbox_cpu_seconds if self.sandbox_cpu_seconds else float("inf")


class PeakRss:
    """Peak resident memory of a process: the kernel's high-water mark where available
    (Linux VmHWM), else the largest of samples taken every 20 ms."""

    def __init__(self, process: psutil.Process) -> None:
        self._process = process
        self._sampled = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._sampled = max(self._sampled, self._process.memory_info().rss)

    def peak(self) -> int:
        self._stop.set()
        self._thread.join()
        status = Path(f"/proc/{self._process.pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return self._sampled


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def read_pages(base: str, process: psutil.Process, label: str, params: dict[str, str]) -> tuple[PagingResult, bytes]:
    """PAGES sequential pages over one keep-alive connection. http.client reads each body in
    one call; requests' 10 KB chunking would make the client, not the sandbox, the limit."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Authorization": "Basic " + base64.b64encode(f"user:{MARKETING_API_KEY}".encode()).decode()}
    path = f"/3.0/lists/{DEFAULT_LIST_ID}/members"
    last_body = b""
    received = 0
    cpu_before = cpu_seconds(process)
    started = time.perf_counter()
    for page in range(PAGES):
        offset = (page * PAGE_SIZE) % max(MEMBERS - PAGE_SIZE, 1)
        query = urlencode({"count": PAGE_SIZE, "offset": offset, **params})
        connection.request("GET", f"{path}?{query}", headers=headers)
        response = connection.getresponse()
        last_body = response.read()
        if response.status != 200:
            raise RuntimeError(f"page {page}: HTTP {response.status} {last_body[:200]!r}")
        received += len(last_body)
    seconds = time.perf_counter() - started
    connection.close()
    return PagingResult(label, PAGES, seconds, cpu_seconds(process) - cpu_before, received / 1e6), last_body


def json_dumps_baseline(page_body: bytes) -> float:
    """Pages/s of json.dumps alone for the same page, in this process."""
    page = json.loads(page_body)
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        json.dumps(page, separators=(",", ":"))
    return rounds / (time.perf_counter() - started)


def md5_baseline_seconds(count: int) -> float:
    started = time.perf_counter()
    for index in range(count):
        hashlib.md5(f"first.last.{index}@example.net".encode(), usedforsecurity=False).hexdigest()
    return time.perf_counter() - started


def verdict(ok: bool) -> str:
    return "OK " if ok else "MISS"


@dataclass
class SandboxFigures:
    seed_seconds: float
    peak_rss_bytes: int
    paging: list[PagingResult]
    connections_opened: int
    baseline_json_dumps_pages_per_second: float
    baseline_md5_seconds: float


def run(base: str, process: psutil.Process) -> SandboxFigures:
    rss = PeakRss(process)
    started = time.perf_counter()
    seeded = requests.post(
        f"{base}/_sandbox/seed", json={"list_id": DEFAULT_LIST_ID, "count": MEMBERS, "seed": 1}, timeout=600
    )
    seeded.raise_for_status()
    seed_seconds = time.perf_counter() - started
    connections_before = requests.get(f"{base}/_sandbox/stats", timeout=10).json()["connections_opened"]
    full, page_body = read_pages(base, process, "full members", {})
    projected_fields = "members.email_address,members.status,members.last_changed,total_items"
    projected, _ = read_pages(base, process, f"fields={projected_fields}", {"fields": projected_fields})
    incremental_query = {"sort_field": "last_changed", "since_last_changed": "2000-01-01T00:00:00+00:00"}
    incremental, _ = read_pages(base, process, "sort_field=last_changed&since_last_changed=...", incremental_query)
    connections = requests.get(f"{base}/_sandbox/stats", timeout=10).json()["connections_opened"]
    return SandboxFigures(
        seed_seconds=seed_seconds,
        peak_rss_bytes=rss.peak(),
        paging=[full, projected, incremental],
        connections_opened=connections - connections_before,
        baseline_json_dumps_pages_per_second=json_dumps_baseline(page_body),
        baseline_md5_seconds=md5_baseline_seconds(MEMBERS),
    )


def report(figures: SandboxFigures) -> None:
    seed, md5, rss = figures.seed_seconds, figures.baseline_md5_seconds, figures.peak_rss_bytes
    dumps = figures.baseline_json_dumps_pages_per_second
    full = figures.paging[0]
    print(f"sandbox in its own process, {MEMBERS:,} members, pages of {PAGE_SIZE}, one keep-alive connection")
    print(
        f"  machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall-clock figures drop on "
        "a busy machine; pages per sandbox CPU-second is the one-core figure)"
    )
    print(
        f"  seed {MEMBERS:,} members: {seed:.2f} s (target < {TARGET_SEED_SECONDS} s: "
        f"{verdict(seed < TARGET_SEED_SECONDS)}); baseline md5 of {MEMBERS:,} addresses in-process "
        f"{md5:.2f} s, seed = {seed / md5:.1f}x baseline"
    )
    print(
        f"  peak RSS of the sandbox: {rss / 2**20:.0f} MiB "
        f"(target < {TARGET_RSS_BYTES // 2**20} MiB: {verdict(rss < TARGET_RSS_BYTES)})"
    )
    for result in figures.paging:
        print(
            f"  {result.label}: {result.pages_per_second:.1f} pages/s "
            f"({result.megabytes / result.seconds:.0f} MB/s), sandbox CPU {result.cpu_share:.0%} of one core, "
            f"{result.pages_per_cpu_second:.0f} pages per sandbox CPU-second "
            f"(target >= {TARGET_PAGES_PER_SECOND} on one core: "
            f"{verdict(result.pages_per_cpu_second >= TARGET_PAGES_PER_SECOND)})"
        )
    print(
        f"  baseline json.dumps of the same 1000-member page in-process: {dumps:.1f} pages/s; "
        f"sandbox full pages = {full.pages_per_second / dumps:.1f}x baseline, "
        f"{full.pages_per_second / TARGET_PAGES_PER_SECOND:.1f}x target"
    )
    print(f"  connections opened for {len(figures.paging) * PAGES} pages: {figures.connections_opened}")


def main() -> None:
    port = free_port()
    sandbox = start_sandbox(port)
    try:
        figures = run(f"http://127.0.0.1:{port}", psutil.Process(sandbox.pid))
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = asdict(figures)
    for result, row in zip(figures.paging, document["paging"], strict=True):
        row.update(pages_per_second=result.pages_per_second, pages_per_cpu_second=result.pages_per_cpu_second)
    RESULTS.write_text(json.dumps(document, indent=2))
    report(figures)


if __name__ == "__main__":
    main()
