"""Custom::MandrillWebhook: the real handler with requests built from
events/mandrill_webhook_registrar, Mandrill = the sandbox over HTTP (it checks the receiver's URL
with a HEAD before it saves a webhook, as Mandrill does), AWS = moto, and CloudFormation's
ResponseURL a local server that keeps the answer the function PUTs there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from sandbox.mailchimp.client import SandboxClient
from tests.support.aws import REGION, forget_caches
from tests.support.cloudformation import ResponseBucket, custom_resource_request
from tests.support.functions import LambdaContext, load_function
from tests.support.webhook_receiver import WebhookReceiver


@dataclass
class Registrar:
    function: Any
    sandbox: SandboxClient
    bucket: ResponseBucket
    url: str
    keys_secret_arn: str
    secrets: Any

    def properties(self, **overrides: Any) -> dict[str, Any]:
        return {"Url": self.url, "WebhookKeysSecretArn": self.keys_secret_arn, "Revision": "1", **overrides}

    def send(self, kind: str, properties: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
        request = custom_resource_request(f"mandrill_webhook_registrar/{kind}.json", self.bucket, properties, old)
        self.function.lambda_handler(request, LambdaContext(timeout_seconds=60))
        return self.bucket.answer(request["RequestId"])

    def webhooks(self, url: str | None = None) -> list[dict[str, Any]]:
        return [hook for hook in self.sandbox.mandrill_webhooks() if hook["url"] == (url or self.url)]

    def keys(self) -> list[str]:
        value = self.secrets.get_secret_value(SecretId=self.keys_secret_arn)["SecretString"]
        return list(json.loads(value)["webhook_keys"])


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """Answers 200 to everything, as the deployed receiver answers Mandrill's HEAD."""
    server = WebhookReceiver(path="/v1/webhooks/mandrill").start()
    yield server
    server.stop()


@pytest.fixture
def bucket() -> Iterator[ResponseBucket]:
    server = ResponseBucket().start()
    yield server
    server.stop()


@pytest.fixture
def registrar(aws_env, make_secret, sandbox, receiver, bucket, monkeypatch) -> Iterator[Registrar]:
    monkeypatch.setenv("MANDRILL_SECRET_ARN", make_secret(json.dumps({"api_key": sandbox.transactional_api_key})))
    monkeypatch.setenv("MANDRILL_API_URL", sandbox.transactional_url)
    monkeypatch.setenv("MAILCHIMP_MAX_ATTEMPTS", "2")
    forget_caches()
    yield Registrar(
        function=load_function("mandrill_webhook_registrar"),
        sandbox=sandbox,
        bucket=bucket,
        url=receiver.url,
        keys_secret_arn=make_secret(json.dumps({"webhook_keys": []})),
        secrets=boto3.client("secretsmanager", endpoint_url=aws_env, region_name=REGION),
    )
    forget_caches()


def test_create_adds_the_webhook_and_stores_its_key(registrar, receiver):
    # When the stack creates the resource
    answer = registrar.send("create", registrar.properties())

    # Then CloudFormation hears SUCCESS, and Mandrill has one webhook at our URL with every event
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"].endswith("/MandrillWebhook")
    (webhook,) = registrar.webhooks()
    assert answer["Data"]["WebhookId"] == str(webhook["id"])
    assert "hard_bounce" in webhook["events"] and "spam" in webhook["events"] and "blacklist" in webhook["events"]
    # And Mandrill checked the URL with a HEAD first
    assert [seen.method for seen in receiver.requests][:1] == ["HEAD"]
    # And its key is the receiver's key now, never in what CloudFormation keeps
    assert registrar.keys() == [webhook["auth_key"]]
    assert webhook["auth_key"] not in json.dumps(answer)


def test_create_again_adopts_the_webhook_instead_of_adding_a_second(registrar):
    registrar.send("create", registrar.properties())

    answer = registrar.send("create", registrar.properties())

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert len(registrar.webhooks()) == 1
    assert len(registrar.keys()) == 1


def test_update_to_another_url_adds_the_new_webhook_and_deletes_the_old(registrar, receiver):
    # Given a registered webhook
    old = registrar.properties()
    registrar.send("create", old)
    old_key = registrar.keys()[0]
    new_url = receiver.url + "?v=2"

    # When the URL changes
    answer = registrar.send("update", registrar.properties(Url=new_url), old)

    # Then the new URL has the webhook, the old one is gone, and both keys are accepted for now
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    (webhook,) = registrar.webhooks(new_url)
    assert registrar.webhooks() == []
    assert registrar.keys() == [webhook["auth_key"], old_key]


def test_delete_removes_the_webhook(registrar):
    registrar.send("create", registrar.properties())

    answer = registrar.send("delete", registrar.properties())

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert registrar.webhooks() == []


def test_delete_of_a_webhook_already_gone_succeeds(registrar):
    answer = registrar.send("delete", registrar.properties())

    assert answer["Status"] == "SUCCESS", answer["Reason"]


def test_a_url_mandrill_cannot_reach_fails_the_create_with_a_reason(registrar):
    answer = registrar.send("create", registrar.properties(Url="http://127.0.0.1:9/webhooks/mandrill"))

    assert answer["Status"] == "FAILED"
    assert "Mandrill refused to add the webhook" in answer["Reason"]
    assert registrar.keys() == []


def test_a_placeholder_mandrill_key_registers_nothing(registrar, make_secret, monkeypatch):
    monkeypatch.setenv("MANDRILL_SECRET_ARN", make_secret(json.dumps({"api_key": "REPLACE-ME"})))
    forget_caches()

    answer = registrar.send("create", registrar.properties())

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["Status"].startswith("waiting for the Mandrill key")
    assert registrar.webhooks() == []
