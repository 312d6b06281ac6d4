"""pytest plugin for Mandrill's webhooks: Mandrill's event documents, signed deliveries built on
events/mandrill_webhook, and ``mandrill_env``: on moto, the events queue, a state table, a bus
of the test's own with a rule copying every ``chimpbridge.mandrill`` event to a capture queue,
and the webhook keys secret, with the functions' environment pointed at them.

Signatures here are made by a second implementation, written from Mandrill's documented PHP
(``ksort`` the POST fields, append each key and value to the URL, ``hash_hmac('sha1', ...,
true)``, ``base64_encode``), not by chimpbridge's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest

from chimpbridge.dal import aws as dal_aws
from tests.support.aws import REGION, forget_caches
from tests.support.functions import event

WEBHOOK_KEYS = ("current-mandrill-key", "previous-mandrill-key")
# The URL events/mandrill_webhook/*.json reached API Gateway at (stage URL).
CALLED_URL = "https://1234567890.execute-api.us-east-1.amazonaws.com/v1/webhooks/mandrill"
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "events"


def php_signature(key: str, url: str, post: dict[str, str]) -> str:
    """Mandrill's documented generateSignature, line for line."""
    signed_data = url
    for name in sorted(post):  # ksort($params)
        signed_data += name
        signed_data += post[name]
    return base64.b64encode(hmac.new(key.encode(), signed_data.encode(), hashlib.sha1).digest()).decode()


def mandrill_json(events: list[dict[str, Any]]) -> str:
    """The array as Mandrill's PHP writes it: compact, non-ASCII as \\uXXXX, / as \\/."""
    return json.dumps(events, separators=(",", ":")).replace("/", "\\/")


def message_event(
    kind: str = "delivered",
    *,
    email: str | None = None,
    message_id: str | None = None,
    ts: int | None = None,
    metadata: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A message event in Mandrill's documented format."""
    message_id = message_id or uuid.uuid4().hex
    email = email or f"person-{uuid.uuid4().hex[:8]}@example.com"
    ts = ts or int(time.time())
    msg: dict[str, Any] = {
        "ts": ts - 5,
        "_id": message_id,
        "state": {"hard_bounce": "bounced", "soft_bounce": "soft-bounced", "reject": "rejected"}.get(kind, "sent"),
        "subject": "Welcome to Acme",
        "email": email,
        "tags": ["registration"],
        "metadata": metadata or {},
        "sender": "hello@example.org",
        "template": None,
        "subaccount": None,
        "opens": [],
        "clicks": [],
        "smtp_events": [],
        "resends": [],
        "_version": "abc123",
    }
    if kind == "hard_bounce":
        msg.update(
            bounce_description="bad_mailbox", bgtools_code=10, diag="smtp;550 5.1.1 The email account does not exist."
        )
    if kind == "soft_bounce":
        msg.update(bounce_description="mailbox_full", bgtools_code=22, diag="smtp;552 5.2.2 Over quota.")
    document: dict[str, Any] = {"event": kind, "_id": message_id, "ts": ts, "msg": msg}
    if kind in ("open", "click"):
        document.update(ip="203.0.113.10", user_agent="Mozilla/5.0 (Macintosh)", location={"country_short": "US"})
    if kind == "click":
        document["url"] = "https://example.org/start?from=welcome"
    document.update(extra)
    return document


def ours(identity_id: str | None = None, hook: str = "registration") -> dict[str, str]:
    """The metadata the email sender attaches to a send (logic/email_content.py)."""
    identity_id = identity_id or str(uuid.uuid4())
    return {"identity_id": identity_id, "hook": hook, "idempotency_key": f"{hook}:{uuid.uuid4().hex}"}


def delivery_body(events: list[dict[str, Any]]) -> tuple[str, dict[str, str]]:
    fields = {"mandrill_events": mandrill_json(events)}
    return urlencode(fields), fields


def webhook_event(
    body: str | None,
    *,
    signature: str | None = None,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """events/mandrill_webhook/delivery.json with this body, signature and headers."""
    request = event("mandrill_webhook/delivery.json")
    request.update(httpMethod=method, body=body)
    request["requestContext"].update(httpMethod=method, requestId=str(uuid.uuid4()))
    merged = {**request["headers"], **(headers or {})}
    if signature is None:
        merged.pop("X-Mandrill-Signature", None)
    else:
        merged["X-Mandrill-Signature"] = signature
    request["headers"] = merged
    request["multiValueHeaders"] = {name: [value] for name, value in merged.items()}
    return request


def signed_delivery(
    events: list[dict[str, Any]], *, key: str = WEBHOOK_KEYS[0], url: str = CALLED_URL
) -> dict[str, Any]:
    body, fields = delivery_body(events)
    return webhook_event(body, signature=php_signature(key, url, fields))


@dataclass
class MandrillEnv:
    endpoint: str
    bus_name: str
    capture_queue_url: str
    events_queue_url: str
    state_table: str
    secret_arn: str
    sqs: Any = field(repr=False)
    dynamodb: Any = field(repr=False)

    def published(self) -> list[dict[str, Any]]:
        """Every event the bus delivered to the capture queue so far (each read once)."""
        events: list[dict[str, Any]] = []
        empty = 0
        while empty < 2:
            batch = self.sqs.receive_message(QueueUrl=self.capture_queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            events.extend(json.loads(message["Body"]) for message in batch)
            empty = 0 if batch else empty + 1
            if not batch:
                time.sleep(0.1)
        return events

    def queued(self) -> list[dict[str, Any]]:
        """Every message on the Mandrill events queue (received, so hidden afterwards)."""
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.events_queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)

    def sqs_event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """A Lambda SQS event of received messages."""
        records = []
        for message in messages:
            records.append(
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": {
                        "ApproximateReceiveCount": message.get("Attributes", {}).get("ApproximateReceiveCount", "1")
                    },
                    "messageAttributes": {},
                    "md5OfBody": message.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:events",
                    "awsRegion": REGION,
                }
            )
        return {"Records": records}

    def items(self, pk: str) -> list[dict[str, Any]]:
        response = self.dynamodb.query(
            TableName=self.state_table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
        )
        return list(response["Items"])

    def table_items(self) -> list[dict[str, Any]]:
        return list(self.dynamodb.scan(TableName=self.state_table)["Items"])


def forget() -> None:
    forget_caches()
    dal_aws.clear()


@pytest.fixture
def mandrill_env(aws_env: str, make_secret: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[MandrillEnv]:
    events = boto3.client("events", endpoint_url=aws_env, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=aws_env, region_name=REGION)
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_env, region_name=REGION)
    suffix = uuid.uuid4().hex[:12]
    bus = f"mandrill-{suffix}"
    events.create_event_bus(Name=bus)
    capture = sqs.create_queue(QueueName=f"captured-{suffix}")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name=f"all-{suffix}", EventBusName=bus, EventPattern=json.dumps({"source": ["chimpbridge.mandrill"]})
    )
    events.put_targets(Rule=f"all-{suffix}", EventBusName=bus, Targets=[{"Id": "capture", "Arn": capture_arn}])
    events_queue = sqs.create_queue(QueueName=f"mandrill-events-{suffix}")["QueueUrl"]
    table = f"state-{suffix}"
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    secret_arn = make_secret(json.dumps({"webhook_keys": list(WEBHOOK_KEYS)}))
    for name, value in {
        "MANDRILL_WEBHOOK_SECRET_ARN": secret_arn,
        "MANDRILL_EVENTS_QUEUE_URL": events_queue,
        "STATE_TABLE": table,
        "EVENT_BUS_NAME": bus,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MANDRILL_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("API_PUBLIC_URL", raising=False)
    forget()
    yield MandrillEnv(
        endpoint=aws_env,
        bus_name=bus,
        capture_queue_url=capture,
        events_queue_url=events_queue,
        state_table=table,
        secret_arn=secret_arn,
        sqs=sqs,
        dynamodb=dynamodb,
    )
    forget()
