"""Mandrill webhook: how fast Mandrill's batches are acknowledged, and how fast their events are
processed, against a receiver that processes each batch inline before it answers.

Workload (Mandrill's shape): BENCH_MANDRILL_BATCHES (50) batches of BENCH_MANDRILL_EVENTS (1,000)
events each, ``delivered`` events of distinct messages, a tenth of them ours (with the metadata the
sender attaches, so they update an email record), form-encoded and signed as Mandrill signs,
posted by BENCH_MANDRILL_SENDERS (10) concurrent senders (one keep-alive client each).

Two receivers, measured in the same run against the same moto (its own server in this process):

* ``queued`` (ours): the real ``functions/mandrill_webhook`` handler behind a local HTTP server
  (an API Gateway proxy event per request): signature, slicing, ``SendMessage``, 200. The real
  ``functions/mandrill_events`` worker drains the queue with BENCH_MANDRILL_WORKERS (5, the
  template's MaximumConcurrency) pollers of 10 messages (its BatchSize).
* ``queued-idle``: the same, with the worker started only after the last acknowledgement, so the
  acknowledgement times are the receiver's own, not shared with a worker in this process.
* ``inline`` (the baseline): the same signature check, then the worker's processing of the whole
  batch (records, publishing, dedupe) before the answer, as a receiver without a queue would.

Printed: acknowledgement p50 / p99 / max as the senders see it, events processed per second
(first send to last event processed), and the ratios queued : inline. Results in
bench/results/mandrill_webhook.json. Caveat: everything runs on this machine, moto in the same
Python process; moto is far slower than DynamoDB and EventBridge, so absolute processing rates are
moto's, while acknowledgement times are mostly ours.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import requests
from moto.server import ThreadedMotoServer

# What the template's Globals give every function; Powertools reads them when the layer is imported.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "chimpbridge")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ChimpBridge")

from chimpbridge import clients, secrets, settings
from chimpbridge.dal import aws
from chimpbridge.logic import mandrill_events
from chimpbridge.logic.mandrill_webhook_auth import verify
from chimpbridge.models.mandrill_events import QueuedEvents
from tests.support.functions import LambdaContext, load_function

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "mandrill_webhook.json"
BATCHES = int(os.environ.get("BENCH_MANDRILL_BATCHES", "50"))
EVENTS = int(os.environ.get("BENCH_MANDRILL_EVENTS", "1000"))
SENDERS = int(os.environ.get("BENCH_MANDRILL_SENDERS", "10"))
WORKERS = int(os.environ.get("BENCH_MANDRILL_WORKERS", "5"))
OURS_SHARE = 0.1
KEY = "bench-mandrill-key"
REGION = "us-east-1"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))] if ordered else float("nan")


def signature(url: str, fields: dict[str, str]) -> str:
    signed = url + "".join(name + fields[name] for name in sorted(fields))
    return base64.b64encode(hmac.new(KEY.encode(), signed.encode(), hashlib.sha1).digest()).decode()


def batch(run: str, number: int) -> list[dict[str, Any]]:
    events = []
    for index in range(EVENTS):
        message_id = f"{run}-{number}-{index}"
        metadata = {}
        if index % round(1 / OURS_SHARE) == 0:
            metadata = {
                "identity_id": str(uuid.uuid4()),
                "hook": "registration",
                "idempotency_key": f"registration:{message_id}",
            }
        msg = {
            "ts": 1767225600,
            "_id": message_id,
            "state": "sent",
            "subject": "Welcome to Example",
            "email": f"person-{message_id}@example.com",
            "tags": ["registration"],
            "metadata": metadata,
            "sender": "hello@example.org",
            "template": None,
            "opens": [],
            "clicks": [],
            "smtp_events": [{"ts": 1767225601, "type": "sent", "diag": "250 2.0.0 OK", "source_ip": "198.51.100.25"}],
            "resends": [],
            "_version": "Zx8Ck2mWq9aBvT3LcR0Jd1",
        }
        events.append({"event": "delivered", "_id": message_id, "ts": 1767225601, "msg": msg})
    return events


class Receivers:
    """One local HTTP server: /queued runs the real receiver, /inline the baseline."""

    def __init__(self) -> None:
        self.receiver = load_function("mandrill_webhook")
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = outer.handle(self.path, dict(self.headers), body)
                data = answer.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        if path == "/inline":
            return self.inline(headers, body)
        event = {
            "httpMethod": "POST",
            "path": "/webhooks/mandrill",
            "headers": {**headers, "X-Forwarded-Proto": "http"},
            "body": body.decode(),
            "isBase64Encoded": False,
            "requestContext": {"requestId": str(uuid.uuid4()), "path": "/queued", "domainName": self.url[7:]},
        }
        response = self.receiver.lambda_handler(event, LambdaContext(timeout_seconds=10))
        return int(response["statusCode"]), str(response["body"])

    def inline(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        from urllib.parse import parse_qsl  # noqa: PLC0415

        fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
        verify(headers.get("X-Mandrill-Signature"), self.url + "/inline", fields, [KEY])
        events = json.loads(fields["mandrill_events"])
        outcome = mandrill_events.process(QueuedEvents(received_at="2026-01-01T00:00:00Z", events=events))
        return 200, outcome.model_dump_json()


def send_all(url: str, bodies: list[tuple[str, str]]) -> tuple[list[float], float, float]:
    """POST every (body, signature) from SENDERS senders; (ack ms each, first send, last ack)."""
    local = threading.local()
    acks: list[float] = []

    def post(item: tuple[str, str]) -> float:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        body, signed = item
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Mandrill-Signature": signed}
        started = time.perf_counter()
        answer = local.session.post(url, data=body, headers=headers, timeout=300)
        elapsed = (time.perf_counter() - started) * 1000
        assert answer.status_code == 200, answer.text[:300]
        return elapsed

    first = time.perf_counter()
    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        acks = list(pool.map(post, bodies))
    return acks, first, time.perf_counter()


def drain(worker: Any, queue_url: str, expected: int, stop_after: float) -> float:
    """Run the worker on the queue until ``expected`` events were processed; returns when."""
    sqs = boto3.client("sqs", region_name=REGION)
    processed = 0
    lock = threading.Lock()
    done = threading.Event()
    finished_at = [0.0]

    def poll() -> None:
        nonlocal processed
        while not done.is_set() and time.perf_counter() < stop_after:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
            if not messages:
                continue
            records = [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                }
                for m in messages
            ]
            result = worker.lambda_handler({"Records": records}, LambdaContext(timeout_seconds=60))
            failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
            count = sum(len(json.loads(m["Body"])["events"]) for m in messages if m["MessageId"] not in failed)
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                    if m["MessageId"] not in failed
                ],
            )
            with lock:
                processed += count
                if processed >= expected and not done.is_set():
                    finished_at[0] = time.perf_counter()
                    done.set()

    threads = [threading.Thread(target=poll, daemon=True) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if not done.is_set():
        raise RuntimeError(f"only {processed} of {expected} events processed in time")
    return finished_at[0]


def environment(moto_url: str) -> tuple[str, str]:
    for name, value in {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": "chimpbridge",
        "POWERTOOLS_METRICS_NAMESPACE": "ChimpBridge",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        os.environ[name] = value
    suffix = uuid.uuid4().hex[:8]
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName=f"mandrill-events-{suffix}", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    boto3.client("events", region_name=REGION).create_event_bus(Name=f"bench-{suffix}")
    table = f"state-{suffix}"
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=f"bench/{suffix}", SecretString=json.dumps({"webhook_keys": [KEY]})
    )["ARN"]
    os.environ.update(
        MANDRILL_WEBHOOK_SECRET_ARN=arn,
        MANDRILL_EVENTS_QUEUE_URL=queue,
        STATE_TABLE=table,
        EVENT_BUS_NAME=f"bench-{suffix}",
    )
    for name in ("MANDRILL_WEBHOOK_URL", "API_PUBLIC_URL"):
        os.environ.pop(name, None)
    settings.clear()
    secrets.clear_cache()
    clients.clear()
    aws.clear()
    return queue, table


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        queue, _ = environment(f"http://{host}:{port}")
        receivers = Receivers()
        worker = load_function("mandrill_events")
        total = BATCHES * EVENTS
        results: dict[str, Any] = {
            "batches": BATCHES,
            "events_per_batch": EVENTS,
            "senders": SENDERS,
            "workers": WORKERS,
        }
        for name in ("queued", "queued-idle", "inline"):
            run = uuid.uuid4().hex[:8]
            url = f"{receivers.url}/{name.removesuffix('-idle')}"
            bodies = []
            for number in range(BATCHES):
                fields = {"mandrill_events": json.dumps(batch(run, number), separators=(",", ":"))}
                bodies.append((urlencode(fields), signature(url, fields)))
            if name == "queued":
                drainer = ThreadPoolExecutor(max_workers=1)
                finished = drainer.submit(drain, worker, queue, total, time.perf_counter() + 3600)
                acks, first, _ = send_all(url, bodies)
                end = finished.result()
                drainer.shutdown()
            elif name == "queued-idle":
                # The acknowledgements alone: no worker competes for this process's CPU meanwhile.
                acks, first, end = send_all(url, bodies)
                end = drain(worker, queue, total, time.perf_counter() + 3600)
            else:
                acks, first, end = send_all(url, bodies)
            results[name] = {
                "ack_p50_ms": round(percentile(acks, 0.5)),
                "ack_p99_ms": round(percentile(acks, 0.99)),
                "ack_max_ms": round(max(acks)),
                "events_per_second": round(total / (end - first)),
                "seconds": round(end - first, 1),
            }
            print(
                f"{name:11} ack p50 {results[name]['ack_p50_ms']:>6} ms  p99 {results[name]['ack_p99_ms']:>6} ms  "
                f"max {results[name]['ack_max_ms']:>6} ms  {results[name]['events_per_second']:>6} events/s  "
                f"({total} events in {results[name]['seconds']} s)"
            )
        # Acknowledgements: the receiver's own (queued-idle; in Lambda the worker runs elsewhere).
        # Throughput: receiver and worker together (queued).
        acked, processed, inline = results["queued-idle"], results["queued"], results["inline"]
        results["ratios"] = {
            "ack_p50_inline_over_queued": round(inline["ack_p50_ms"] / max(1, acked["ack_p50_ms"]), 1),
            "ack_p99_inline_over_queued": round(inline["ack_p99_ms"] / max(1, acked["ack_p99_ms"]), 1),
            "events_per_second_queued_over_inline": round(
                processed["events_per_second"] / max(1, inline["events_per_second"]), 2
            ),
        }
        print("ratios (inline : queued acknowledgement, queued : inline throughput):", results["ratios"])
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
