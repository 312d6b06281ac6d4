"""pytest plugin for the Mailchimp audience webhook: Mailchimp's documented payloads, events
built from events/mailchimp_webhook, signatures, and ``webhook_env``: a bus of the test's own
on moto with a rule that copies every event to a capture queue, an idempotency table and the
webhook secret, with the function's environment pointed at them.
"""

from __future__ import annotations

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
from chimpbridge.logic import mailchimp_webhook
from chimpbridge.logic.mailchimp_webhook_auth import expected_signature
from tests.support.aws import REGION, forget_caches
from tests.support.functions import event

WEBHOOK_TOKENS = ("current-webhook-token", "previous-webhook-token")
SIGNING_KEY = "test-signing-key"
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "events"

# Mailchimp's documented sample deliveries (developer guide "Sync audience data with webhooks"
# and the webhook reference), field for field and in order; subscribe and profile also carry
# the interest categories as Mailchimp nests them (data[merges][GROUPINGS][n][...]).
DOCUMENTED: dict[str, list[tuple[str, str]]] = {
    "subscribe": [
        ("type", "subscribe"),
        ("fired_at", "2009-03-26 21:35:57"),
        ("data[id]", "8a25ff1d98"),
        ("data[list_id]", "a6b5da1054"),
        ("data[email]", "api@mailchimp.com"),
        ("data[email_type]", "html"),
        ("data[merges][EMAIL]", "api@mailchimp.com"),
        ("data[merges][FNAME]", "Mailchimp"),
        ("data[merges][LNAME]", "API"),
        ("data[merges][INTERESTS]", "Group1,Group2"),
        ("data[merges][GROUPINGS][0][id]", "1"),
        ("data[merges][GROUPINGS][0][unique_id]", "1aa2ddd1a"),
        ("data[merges][GROUPINGS][0][name]", "Interests"),
        ("data[merges][GROUPINGS][0][groups]", "Group1,Group2"),
        ("data[ip_opt]", "10.20.10.30"),
        ("data[ip_signup]", "10.20.10.30"),
    ],
    "unsubscribe": [
        ("type", "unsubscribe"),
        ("fired_at", "2009-03-26 21:40:57"),
        ("data[action]", "unsub"),
        ("data[reason]", "manual"),
        ("data[id]", "8a25ff1d98"),
        ("data[list_id]", "a6b5da1054"),
        ("data[email]", "api+unsub@mailchimp.com"),
        ("data[email_type]", "html"),
        ("data[merges][EMAIL]", "api+unsub@mailchimp.com"),
        ("data[merges][FNAME]", "Mailchimp"),
        ("data[merges][LNAME]", "API"),
        ("data[merges][INTERESTS]", "Group1,Group2"),
        ("data[ip_opt]", "10.20.10.30"),
        ("data[campaign_id]", "cb398d21d2"),
    ],
    "profile": [
        ("type", "profile"),
        ("fired_at", "2009-03-26 21:31:21"),
        ("data[id]", "8a25ff1d98"),
        ("data[list_id]", "a6b5da1054"),
        ("data[email]", "api@mailchimp.com"),
        ("data[email_type]", "html"),
        ("data[merges][EMAIL]", "api@mailchimp.com"),
        ("data[merges][FNAME]", "Mailchimp"),
        ("data[merges][LNAME]", "API"),
        ("data[merges][INTERESTS]", "Group1,Group2"),
        ("data[merges][GROUPINGS][0][id]", "1"),
        ("data[merges][GROUPINGS][0][unique_id]", "1aa2ddd1a"),
        ("data[merges][GROUPINGS][0][name]", "Interests"),
        ("data[merges][GROUPINGS][0][groups]", "Group1,Group2"),
        ("data[merges][GROUPINGS][1][id]", "2"),
        ("data[merges][GROUPINGS][1][unique_id]", "2bb3eee2b"),
        ("data[merges][GROUPINGS][1][name]", "Frequency"),
        ("data[merges][GROUPINGS][1][groups]", "Weekly"),
        ("data[ip_opt]", "10.20.10.30"),
    ],
    "upemail": [
        ("type", "upemail"),
        ("fired_at", "2009-03-26 22:15:09"),
        ("data[list_id]", "a6b5da1054"),
        ("data[new_id]", "51da8c3259"),
        ("data[new_email]", "api+new@mailchimp.com"),
        ("data[old_email]", "api+old@mailchimp.com"),
    ],
    "cleaned": [
        ("type", "cleaned"),
        ("fired_at", "2009-03-26 22:01:00"),
        ("data[list_id]", "a6b5da1054"),
        ("data[campaign_id]", "4fjk2ma9xd"),
        ("data[reason]", "hard"),
        ("data[email]", "api+cleaned@mailchimp.com"),
    ],
    "campaign": [
        ("type", "campaign"),
        ("fired_at", "2009-03-26 21:31:21"),
        ("data[id]", "5aa2102003"),
        ("data[subject]", "Test Campaign Subject"),
        ("data[status]", "sent"),
        ("data[reason]", ""),
        ("data[list_id]", "a6b5da1054"),
    ],
}


def new_id() -> str:
    return uuid.uuid4().hex[:10]


def delivery_body(kind: str, **overrides: str) -> str:
    """The documented delivery of ``kind``, form-encoded, with fields replaced by name."""
    fields = [(name, overrides.get(name, value)) for name, value in DOCUMENTED[kind]]
    return urlencode(fields)


def unique_delivery(kind: str = "subscribe", **overrides: str) -> str:
    """A documented delivery about a member (or campaign) no other test uses."""
    person = new_id()
    changes = {
        "subscribe": {"data[email]": f"person-{person}@example.com"},
        "unsubscribe": {"data[email]": f"person-{person}@example.com"},
        "profile": {"data[email]": f"person-{person}@example.com"},
        "cleaned": {"data[email]": f"person-{person}@example.com"},
        "upemail": {"data[old_email]": f"old-{person}@example.com", "data[new_email]": f"new-{person}@example.com"},
        "campaign": {"data[id]": person},
    }[kind]
    return delivery_body(kind, **{**changes, **overrides})


def signature(body: str | bytes, *, key: str = SIGNING_KEY, at: float | None = None) -> str:
    timestamp = int(time.time() if at is None else at)
    raw = body.encode() if isinstance(body, str) else body
    return f"t={timestamp},v1={expected_signature(key, timestamp, raw)}"


def webhook_event(
    body: str | None = None,
    *,
    token: str = WEBHOOK_TOKENS[0],
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """events/mailchimp_webhook/subscribe.json with this method, token, body and extra headers."""
    request = event("mailchimp_webhook/subscribe.json")
    path = f"/webhooks/mailchimp/{token}"
    request.update(httpMethod=method, path=path, pathParameters={"token": token}, body=body)
    request["requestContext"].update(path=f"/v1{path}", httpMethod=method, requestId=str(uuid.uuid4()))
    merged = {**request["headers"], **(headers or {})}
    request["headers"] = merged
    request["multiValueHeaders"] = {name: [value] for name, value in merged.items()}
    return request


@dataclass
class WebhookEnv:
    """Per-test resources and helpers."""

    endpoint: str
    bus_name: str
    capture_queue_url: str
    table_name: str
    secret_arn: str
    sqs: Any = field(repr=False)
    secrets: Any = field(repr=False)
    dynamodb: Any = field(repr=False)

    def published(self) -> list[dict[str, Any]]:
        """Every event the bus delivered to the capture queue so far (each read once): receives
        until the queue has answered empty twice, a moment apart."""
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

    def records(self) -> list[dict[str, Any]]:
        """The idempotency records (deliveries remembered as published)."""
        return list(self.dynamodb.scan(TableName=self.table_name)["Items"])

    def use_secret(self, value: dict[str, Any]) -> None:
        """Change the webhook secret (rotation, signing); the function reads it on its next cold start."""
        self.secrets.put_secret_value(SecretId=self.secret_arn, SecretString=json.dumps(value))
        forget()


def forget() -> None:
    forget_caches()
    dal_aws.clear()
    mailchimp_webhook.clear()


@pytest.fixture
def webhook_env(aws_env: str, make_secret: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookEnv]:
    events = boto3.client("events", endpoint_url=aws_env, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=aws_env, region_name=REGION)
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_env, region_name=REGION)
    suffix = uuid.uuid4().hex[:12]
    bus = f"events-{suffix}"
    events.create_event_bus(Name=bus)
    capture = sqs.create_queue(QueueName=f"captured-{suffix}")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = json.dumps({"source": ["chimpbridge.mailchimp"]})
    events.put_rule(Name=f"everything-{suffix}", EventBusName=bus, EventPattern=pattern)
    events.put_targets(Rule=f"everything-{suffix}", EventBusName=bus, Targets=[{"Id": "capture", "Arn": capture_arn}])
    table = f"idempotency-{suffix}"
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    secret_arn = make_secret(json.dumps({"webhook_tokens": list(WEBHOOK_TOKENS)}))
    for name, value in {
        "MAILCHIMP_WEBHOOK_SECRET_ARN": secret_arn,
        "EVENT_BUS_NAME": bus,
        "IDEMPOTENCY_TABLE": table,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MAILCHIMP_WEBHOOK_SOURCES", raising=False)
    forget()
    yield WebhookEnv(
        endpoint=aws_env,
        bus_name=bus,
        capture_queue_url=capture,
        table_name=table,
        secret_arn=secret_arn,
        sqs=sqs,
        secrets=boto3.client("secretsmanager", endpoint_url=aws_env, region_name=REGION),
        dynamodb=dynamodb,
    )
    forget()
