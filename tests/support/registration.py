"""pytest plugin for the registration hook and the email sender: their AWS resources on moto,
the Mailchimp sandbox as Mandrill, Kratos-shaped ``ctx`` documents and the shipped Jsonnet.

``email_env`` gives each test its own queues, idempotency table and secrets (unique names),
points the function environment at them and at the sandbox, and returns helpers to build
events from ``events/`` and to read what was queued.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _jsonnet
import boto3
import pytest

from chimpbridge.dal import aws as dal_aws
from chimpbridge.logic import email_sender, registration_hook
from sandbox.mailchimp.client import SandboxClient
from tests.support.aws import REGION, forget_caches
from tests.support.functions import event

ROOT = Path(__file__).resolve().parents[2]
JSONNET = ROOT / "examples" / "ory" / "registration-webhook.jsonnet"
HOOK_KEYS = ("current-hook-key", "previous-hook-key")
FROM_ADDRESS = "welcome@example.org"  # example.org is a verified sending domain in the sandbox


def new_id() -> str:
    return str(uuid.uuid4())


def kratos_ctx(
    *,
    identity_id: str | None = None,
    email: str | None = None,
    traits: dict[str, Any] | None = None,
    verifiable: list[str] | None = None,
    flow_id: str | None = None,
    transient_payload: dict[str, Any] | None = None,
    accept_language: str = "en-GB,en;q=0.9",
) -> dict[str, Any]:
    """The ``ctx`` Kratos renders a registration ``web_hook`` Jsonnet with (post-persist):
    identity (traits, verifiable and recovery addresses), flow (with the transient payload),
    the request's headers, method, URL and cookies."""
    identity_id = identity_id or new_id()
    flow_id = flow_id or new_id()
    email = email or f"person-{identity_id[:8]}@example.com"
    addresses = verifiable if verifiable is not None else [email]
    return {
        "identity": {
            "id": identity_id,
            "schema_id": "preset://email",
            "schema_url": "https://auth.example.org/schemas/cHJlc2V0Oi8vZW1haWw",
            "state": "active",
            "traits": {"email": email, **(traits or {})},
            "verifiable_addresses": [
                {"id": new_id(), "value": value, "verified": False, "via": "email", "status": "sent"}
                for value in addresses
            ],
            "recovery_addresses": [{"id": new_id(), "value": value, "via": "email"} for value in addresses],
            "metadata_public": None,
            "created_at": "2026-01-15T09:30:00Z",
            "updated_at": "2026-01-15T09:30:00Z",
        },
        "flow": {
            "id": flow_id,
            "type": "browser",
            "expires_at": "2026-01-15T10:30:00Z",
            "issued_at": "2026-01-15T09:29:00Z",
            "request_url": "https://auth.example.org/self-service/registration/browser",
            "ui": {"action": f"https://auth.example.org/self-service/registration?flow={flow_id}", "method": "POST"},
            "state": "choose_method",
            "transient_payload": transient_payload or {},
        },
        "request_headers": {
            "Accept": ["application/json"],
            "Accept-Language": [accept_language],
            "Cookie": ["ory_kratos_session=MTcwMDAwMDAwMHxzZWNyZXQtc2Vzc2lvbg; csrf_token_806=Y3NyZg"],
            "User-Agent": ["Mozilla/5.0 (X11; Linux x86_64)"],
        },
        "request_method": "POST",
        "request_url": f"https://auth.example.org/self-service/registration?flow={flow_id}",
        "request_cookies": {
            "ory_kratos_session": "MTcwMDAwMDAwMHxzZWNyZXQtc2Vzc2lvbg",
            "csrf_token_806": "Y3NyZg",
        },
    }


def render_hook_body(ctx: dict[str, Any]) -> dict[str, Any]:
    """The shipped Jsonnet, evaluated by the real Jsonnet engine as Kratos does (ctx as a
    top-level argument)."""
    rendered = _jsonnet.evaluate_file(str(JSONNET), tla_codes={"ctx": json.dumps(ctx)})
    return dict(json.loads(rendered))


def hook_event(body: Any, *, key: str | None = HOOK_KEYS[0], trigger_id: str | None = None, hook: str = "registration"):
    """events/registration_hook/registration.json with this body, key and trigger id."""
    request = event("registration_hook/registration.json")
    request["body"] = body if isinstance(body, str) else json.dumps(body)
    request["path"] = f"/hooks/{hook}"
    request["pathParameters"] = {"hook": hook}
    request["requestContext"]["path"] = f"/v1/hooks/{hook}"
    request["requestContext"]["requestId"] = new_id()
    headers = {k: v for k, v in request["headers"].items() if k not in ("Authorization", "Ory-Webhook-Trigger-ID")}
    if key is not None:
        headers["Authorization"] = key
    if trigger_id is not None:
        headers["Ory-Webhook-Trigger-ID"] = trigger_id
    request["headers"] = headers
    request["multiValueHeaders"] = {name: [value] for name, value in headers.items()}
    return request


def hook_body(**overrides: Any) -> dict[str, Any]:
    """A valid hook body (what the Jsonnet renders) for a new identity and flow."""
    identity_id = new_id()
    body: dict[str, Any] = {
        "identity_id": identity_id,
        "email": f"person-{identity_id[:8]}@example.com",
        "name": {"first": "Ada", "last": "Lovelace"},
        "locale": "en-GB",
        "flow": {"id": new_id(), "type": "browser"},
        "transient_payload": {},
        "consents": {},
    }
    body.update(overrides)
    return body


def queued_email(
    name: dict[str, str], *, to: str | None = None, prefix: str = "person", **overrides: Any
) -> dict[str, Any]:
    """The body of events/email_sender/welcome.json for a new identity and flow, as the hook
    queues it: to ``name`` at ``to`` (by default ``<prefix>-<identity>@example.com``), with its
    own idempotency key; ``overrides`` replace fields last."""
    message: dict[str, Any] = json.loads(event("email_sender/welcome.json")["Records"][0]["body"])
    identity_id = new_id()
    message.update(
        identity_id=identity_id,
        flow_id=new_id(),
        idempotency_key=f"registration:{identity_id.replace('-', '')}",
        recipient={"email": to or f"{prefix}-{identity_id[:8]}@example.com", "name": name},
    )
    message.update(overrides)
    return message


@dataclass
class EmailEnv:
    """Per-test resources and helpers."""

    endpoint: str
    sandbox: SandboxClient
    email_queue_url: str
    signup_queue_url: str
    table_name: str
    list_id: str
    sqs: Any = field(repr=False)
    dynamodb: Any = field(repr=False)

    def receive(self, queue_url: str | None = None, *, attempts: int = 3) -> list[dict[str, Any]]:
        """Every message currently visible on the queue (received, so hidden for a while)."""
        messages: list[dict[str, Any]] = []
        for _ in range(attempts):
            batch = self.sqs.receive_message(
                QueueUrl=queue_url or self.email_queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            messages.extend(batch)
            if not batch:
                break
        return messages

    def bodies(self, queue_url: str | None = None) -> list[dict[str, Any]]:
        return [json.loads(message["Body"]) for message in self.receive(queue_url)]

    def sqs_event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """A Lambda SQS event holding these received messages (events/email_sender/welcome.json shape)."""
        template = event("email_sender/welcome.json")["Records"][0]
        records = []
        for message in messages:
            record = copy.deepcopy(template)
            record.update(
                messageId=message["MessageId"],
                receiptHandle=message["ReceiptHandle"],
                body=message["Body"],
                md5OfBody=message["MD5OfBody"],
            )
            record["attributes"]["ApproximateReceiveCount"] = message.get("Attributes", {}).get(
                "ApproximateReceiveCount", "1"
            )
            records.append(record)
        return {"Records": records}

    def queue(self, body: dict[str, Any] | str) -> dict[str, Any]:
        """Put one message on the email queue and receive it back (with its receipt handle)."""
        self.sqs.send_message(
            QueueUrl=self.email_queue_url, MessageBody=body if isinstance(body, str) else json.dumps(body)
        )
        (message,) = self.receive()
        return message

    def idempotency_records(self) -> list[dict[str, Any]]:
        return list(self.dynamodb.scan(TableName=self.table_name)["Items"])


@pytest.fixture
def email_env(
    aws_env: str, make_secret: Any, monkeypatch: pytest.MonkeyPatch, sandbox: SandboxClient
) -> Iterator[EmailEnv]:
    sqs = boto3.client("sqs", endpoint_url=aws_env, region_name=REGION)
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_env, region_name=REGION)
    suffix = uuid.uuid4().hex[:12]
    email_queue = sqs.create_queue(QueueName=f"email-{suffix}")["QueueUrl"]
    signup_queue = sqs.create_queue(QueueName=f"signup-{suffix}")["QueueUrl"]
    table = f"idempotency-{suffix}"
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    environment = {
        "HOOK_KEYS_SECRET_ARN": make_secret(json.dumps({"registration_hook_keys": list(HOOK_KEYS)})),
        "MANDRILL_SECRET_ARN": make_secret(json.dumps({"api_key": sandbox.transactional_api_key})),
        "MANDRILL_API_URL": sandbox.transactional_url,
        "EMAIL_QUEUE_URL": email_queue,
        "SIGNUP_QUEUE_URL": signup_queue,
        "IDEMPOTENCY_TABLE": table,
        "MAILCHIMP_LIST_ID": sandbox.default_list_id,
        "NEWSLETTER_OPT_IN_TRAIT": "newsletter",
        "EMAIL_FROM_ADDRESS": FROM_ADDRESS,
        "EMAIL_FROM_NAME": "Acme",
        "EMAIL_REPLY_TO": "support@example.org",
        "EMAIL_RETRY_BASE_DELAY_SECONDS": "60",
        "MAILCHIMP_MAX_ATTEMPTS": "2",
        "MAILCHIMP_RETRY_BUDGET_SECONDS": "2",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("EMAIL_FLOWS", raising=False)

    def forget() -> None:
        forget_caches()
        dal_aws.clear()
        registration_hook.clear()
        email_sender.clear()

    forget()
    yield EmailEnv(
        endpoint=aws_env,
        sandbox=sandbox,
        email_queue_url=email_queue,
        signup_queue_url=signup_queue,
        table_name=table,
        list_id=sandbox.default_list_id,
        sqs=sqs,
        dynamodb=dynamodb,
    )
    forget()
