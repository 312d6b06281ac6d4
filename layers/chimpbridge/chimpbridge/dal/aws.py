"""boto3 clients, built on first use and cached per container.

boto3 honours ``AWS_ENDPOINT_URL`` itself, so the same code talks to moto locally. Importing
boto3 costs ~0.3 s, so nothing imports this module's clients until a path really needs AWS.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


@functools.cache
def _client(service: str) -> Any:
    import boto3  # noqa: PLC0415 - deliberately lazy, see module docstring
    from botocore.config import Config  # noqa: PLC0415

    from chimpbridge.observability import tracer  # noqa: PLC0415

    tracer.patch(("botocore",))
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=10)
    return boto3.client(service, config=config)  # type: ignore[call-overload]


def sqs() -> SQSClient:
    return _client("sqs")  # type: ignore[no-any-return]


def dynamodb() -> DynamoDBClient:
    return _client("dynamodb")  # type: ignore[no-any-return]


def s3() -> S3Client:
    return _client("s3")  # type: ignore[no-any-return]


def clear() -> None:
    """Forget cached clients (tests that change the endpoint call this)."""
    _client.cache_clear()
