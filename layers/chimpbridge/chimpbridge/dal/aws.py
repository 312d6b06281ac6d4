"""boto3 clients, built on first use and cached per container.

boto3 honours ``AWS_ENDPOINT_URL`` itself, so the same code talks to moto locally. Importing
boto3 is a large part of a cold start (docs/benchmarks.md, "Shared layer: the key on a cold
start"), so nothing imports this module's clients until a path really needs AWS.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


# (attempts, connect timeout, read timeout) per profile. "prompt" serves callers that drop us
# after a few seconds (Mailchimp gives a webhook delivery 10 s, its Lambda has 8): one call ends
# within 2 x 1 s plus botocore's backoff (at most 2 s), so a slow AWS becomes a clean 5xx that
# the sender retries, rather than a timeout.
_PROFILES = {"default": (5, 3, 10), "prompt": (2, 1, 1)}


@functools.cache
def _client(service: str, profile: str = "default") -> Any:
    import boto3  # noqa: PLC0415 - deliberately lazy, see module docstring
    from botocore.config import Config  # noqa: PLC0415

    from chimpbridge.observability import tracer  # noqa: PLC0415

    tracer.patch(("botocore",))
    attempts, connect_timeout, read_timeout = _PROFILES[profile]
    config = Config(
        retries={"mode": "standard", "max_attempts": attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        # Queue consumers make a message's calls from a small thread pool, more than 10 at once.
        max_pool_connections=32,
    )
    return boto3.client(service, config=config)  # type: ignore[call-overload]


def sqs() -> SQSClient:
    return _client("sqs")  # type: ignore[no-any-return]


def dynamodb(*, prompt: bool = False) -> DynamoDBClient:
    return _client("dynamodb", "prompt" if prompt else "default")  # type: ignore[no-any-return]


def events(*, prompt: bool = True) -> Any:
    """EventBridge; prompt unless a queue consumer publishes. (No mypy_boto3 stubs for it.)"""
    return _client("events", "prompt" if prompt else "default")


def s3() -> S3Client:
    return _client("s3")  # type: ignore[no-any-return]


def secretsmanager() -> Any:
    """Writes only (the connect flow); reads go through chimpbridge/secrets.py."""
    return _client("secretsmanager")


def clear() -> None:
    """Forget cached clients (tests that change the endpoint call this)."""
    _client.cache_clear()
