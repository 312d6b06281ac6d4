"""pytest plugin: AWS is a moto server on loopback, shared by the whole test session.

The layer talks to it exactly as it talks to AWS: boto3 through ``AWS_ENDPOINT_URL`` and the
signed Secrets Manager call through the same variable. ``aws_env`` points the environment at it
and forgets every cache (settings, secrets, clients) before and after each test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from chimpbridge import clients, secrets, settings

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def forget_caches() -> None:
    settings.clear()
    secrets.clear_cache()
    clients.clear()


@pytest.fixture
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    forget_caches()
    yield moto_server
    forget_caches()


@pytest.fixture
def make_secret(aws_env: str) -> Any:
    """Create a uniquely named secret holding ``value`` (a dict, stored as JSON); returns its ARN."""
    client = boto3.client("secretsmanager", endpoint_url=aws_env, region_name=REGION)

    def make(value: str) -> str:
        return str(client.create_secret(Name=f"test/{uuid.uuid4()}", SecretString=value)["ARN"])

    return make
