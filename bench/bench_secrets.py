"""Reading the Mailchimp key on a cold start: the layer's signed Secrets Manager call against
the baseline everyone writes, boto3's ``get_secret_value``.

Each run is a fresh Python process (a new Lambda execution environment) that reads one secret
from a moto server and exits; the clock runs from before the first import to the parsed
value. The median of interleaved runs is compared as layer / boto3. This is the measurement
behind chimpbridge/sigv4.py: on the signup path the key is the only AWS call, so boto3's
import and client construction would be pure cold-start cost.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_SECRETS_RUNS", "11"))

LAYER = textwrap.dedent(
    """
    import sys, time
    started = time.perf_counter()
    from chimpbridge.secrets import MailchimpCredentials, get_secret
    get_secret(sys.argv[1], MailchimpCredentials)
    print(time.perf_counter() - started)
    """
)
BASELINE = textwrap.dedent(
    """
    import sys, time
    started = time.perf_counter()
    import json, boto3
    value = boto3.client("secretsmanager").get_secret_value(SecretId=sys.argv[1])
    json.loads(value["SecretString"])
    print(time.perf_counter() - started)
    """
)


def run(code: str, arn: str, env: dict[str, str]) -> float:
    output = subprocess.run(
        [sys.executable, "-c", code, arn], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return float(output.stdout.strip().splitlines()[-1])


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO_ROOT / "layers" / "chimpbridge"),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }
        client = boto3.client(
            "secretsmanager",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        arn = client.create_secret(Name=f"bench/{uuid.uuid4()}", SecretString=json.dumps({"api_key": "0123abcd-us21"}))[
            "ARN"
        ]
        layer, baseline = [], []
        for _ in range(RUNS):  # interleaved, so drift hits both alike
            layer.append(run(LAYER, arn, env))
            baseline.append(run(BASELINE, arn, env))
    finally:
        moto.stop()
    ours, theirs = statistics.median(layer), statistics.median(baseline)
    print(f"  fresh process: import + read one JSON secret, median of {RUNS} runs each (moto on loopback)")
    print(f"  chimpbridge.secrets (signed call)     {ours * 1000:6.0f} ms")
    print(f"  baseline boto3 get_secret_value       {theirs * 1000:6.0f} ms")
    print(f"  ratio layer/boto3 {ours / theirs:.2f} ({(theirs - ours) * 1000:.0f} ms saved per cold start)")


if __name__ == "__main__":
    main()
