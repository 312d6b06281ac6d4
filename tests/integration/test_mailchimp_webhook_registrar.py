"""Custom::MailchimpWebhooks: the real handler with requests built from
events/mailchimp_webhook_registrar, Mailchimp = the sandbox over HTTP (it GETs the receiver's URL
before it saves a webhook, as Mailchimp does), AWS = moto, and CloudFormation's ResponseURL a
local server that keeps the answer the function PUTs there."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sandbox.mailchimp.client import SandboxClient
from tests.support.aws import forget_caches
from tests.support.cloudformation import ResponseBucket, custom_resource_request
from tests.support.functions import LambdaContext, load_function
from tests.support.scripted_http import Answer
from tests.support.webhook_receiver import WebhookReceiver

TOKENS = ("current-registrar-token", "previous-registrar-token")
EVERY_EVENT = dict.fromkeys(("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign"), True)


@dataclass
class Registrar:
    """The function, the sandbox, the receiver Mailchimp validates, and what CloudFormation got."""

    function: Any
    sandbox: SandboxClient
    bucket: ResponseBucket
    url_prefix: str
    token_secret_arn: str
    secrets: Any

    def properties(self, *audiences: str, **overrides: Any) -> dict[str, Any]:
        return {
            "Audiences": list(audiences),
            "Url": self.url_prefix,
            "Sources": ["user", "admin"],
            "TokenSecretArn": self.token_secret_arn,
            "Revision": "1",
            **overrides,
        }

    def send(self, kind: str, properties: dict[str, Any], old: dict[str, Any] | None = None, **fields: Any) -> dict:
        """One CloudFormation request; returns the answer the function PUT to ResponseURL."""
        timeout = fields.pop("timeout", 60)
        request = custom_resource_request(f"mailchimp_webhook_registrar/{kind}.json", self.bucket, properties, old)
        request.update(fields)
        self.function.lambda_handler(request, LambdaContext(timeout_seconds=timeout))
        return self.bucket.answer(request["RequestId"])

    def webhooks(self, audience: str) -> list[dict[str, Any]]:
        return [hook for hook in self.sandbox.webhooks() if hook["list_id"] == audience]

    def put_tokens(self, value: dict[str, Any]) -> None:
        self.secrets.put_secret_value(SecretId=self.token_secret_arn, SecretString=json.dumps(value))
        forget_caches()


def new_audience(sandbox: SandboxClient) -> str:
    list_id = uuid.uuid4().hex[:10]
    sandbox.seed(list_id, 1)
    return list_id


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """Answers 200 to everything, as the deployed receiver answers Mailchimp's validating GET."""
    server = WebhookReceiver(path="/v1/webhooks/mailchimp").start()
    yield server
    server.stop()


@pytest.fixture
def bucket() -> Iterator[ResponseBucket]:
    server = ResponseBucket().start()
    yield server
    server.stop()


@pytest.fixture
def registrar(aws_env, make_secret, sandbox, receiver, bucket, monkeypatch) -> Iterator[Registrar]:
    import boto3  # noqa: PLC0415

    mailchimp_secret = make_secret(json.dumps({"api_key": sandbox.marketing_api_key}))
    token_secret = make_secret(json.dumps({"webhook_tokens": list(TOKENS)}))
    monkeypatch.setenv("MAILCHIMP_SECRET_ARN", mailchimp_secret)
    monkeypatch.setenv("MAILCHIMP_API_URL", sandbox.marketing_url)
    monkeypatch.setenv("MAILCHIMP_MAX_ATTEMPTS", "2")
    forget_caches()
    yield Registrar(
        function=load_function("mailchimp_webhook_registrar"),
        sandbox=sandbox,
        bucket=bucket,
        url_prefix=receiver.url + "/",
        token_secret_arn=token_secret,
        secrets=boto3.client("secretsmanager", endpoint_url=aws_env, region_name="us-east-1"),
    )
    forget_caches()


# ---------------------------------------------------------------- create
def test_create_registers_one_webhook_per_audience_at_the_receiver_with_the_current_token(registrar, receiver):
    # Given two audiences
    first, second = new_audience(registrar.sandbox), new_audience(registrar.sandbox)

    # When the stack creates the resource
    answer = registrar.send("create", registrar.properties(first, second))

    # Then CloudFormation hears SUCCESS with a physical id made of the stack and the logical id
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "chimpbridge-local/5b2c4a10-9f1e-11ef-8c3a-0a1b2c3d4e5f/MailchimpWebhooks"
    assert answer["Data"]["Status"] == "registered"
    assert answer["Data"]["Audiences"] == ",".join(sorted([first, second]))
    # And each audience has one webhook: the current token, every event, user and admin (not api)
    for audience in (first, second):
        (webhook,) = registrar.webhooks(audience)
        assert webhook["url"] == registrar.url_prefix + TOKENS[0]
        assert webhook["events"] == EVERY_EVENT
        assert webhook["sources"] == {"user": True, "admin": True, "api": False}
        assert webhook["signed"] is False
    # And Mailchimp validated the URL with a GET, as it does before it saves a webhook
    validated = [seen.path for seen in receiver.requests if seen.method == "GET"]
    assert validated == [f"/v1/webhooks/mailchimp/{TOKENS[0]}"] * 2
    # And the token is nowhere in what CloudFormation keeps
    assert TOKENS[0] not in json.dumps(answer)


def test_a_subscriber_change_then_reaches_the_receiver(registrar, receiver):
    # Given a registered audience
    audience = new_audience(registrar.sandbox)
    registrar.send("create", registrar.properties(audience))
    registrar.sandbox.marketing_sdk().lists.set_list_member(
        audience, "ada@example.org", {"email_address": "ada@example.org", "status_if_new": "pending"}
    )

    # When the subscriber confirms (a "user" change)
    registrar.sandbox.act_on_member("ada@example.org", "confirm", list_id=audience)

    # Then Mailchimp delivers the subscribe to the receiver
    (post,) = receiver.posts(1)
    assert post["type"] == "subscribe" and post["data[email]"] == "ada@example.org"


def test_create_adopts_the_webhooks_already_there_instead_of_adding_more(registrar):
    # Given an audience with our webhook (made by hand, only user changes) and an old-token one
    audience = new_audience(registrar.sandbox)
    sdk = registrar.sandbox.marketing_sdk()
    mine = sdk.lists.create_list_webhook(audience, {"url": registrar.url_prefix + TOKENS[0], "sources": {"user": True}})
    sdk.lists.create_list_webhook(audience, {"url": registrar.url_prefix + "a-token-long-gone"})

    # When the resource is created
    answer = registrar.send("create", registrar.properties(audience))

    # Then the existing webhook is kept and corrected, and the leftover is gone
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    (webhook,) = registrar.webhooks(audience)
    assert webhook["id"] == mine["id"]
    assert webhook["sources"] == {"user": True, "admin": True, "api": False}
    assert webhook["events"] == EVERY_EVENT


def test_create_repeated_changes_nothing(registrar):
    audience = new_audience(registrar.sandbox)
    registrar.send("create", registrar.properties(audience))
    (before,) = registrar.webhooks(audience)

    answer = registrar.send("create", registrar.properties(audience))

    assert answer["Status"] == "SUCCESS"
    assert registrar.webhooks(audience) == [before]


def test_with_a_signing_key_the_webhook_is_created_signed(registrar):
    # Given a token secret with a signing key (the receiver then requires signatures)
    registrar.put_tokens({"webhook_tokens": list(TOKENS), "signing_key": "registrar-signing-key"})
    audience = new_audience(registrar.sandbox)

    answer = registrar.send("create", registrar.properties(audience))

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    (webhook,) = registrar.webhooks(audience)
    assert webhook["signed"] is True
    assert "registrar-signing-key" not in json.dumps(answer)


def test_a_stack_created_secret_with_its_placeholder_registers_nothing_and_says_why(
    registrar, make_secret, monkeypatch
):
    # Given the Mailchimp secret as the template creates it
    monkeypatch.setenv("MAILCHIMP_SECRET_ARN", make_secret(json.dumps({"api_key": "REPLACE-ME-us1"})))
    forget_caches()
    audience = new_audience(registrar.sandbox)

    answer = registrar.send("create", registrar.properties(audience))

    # Then the stack is created, nothing is registered, and the attribute says why
    assert answer["Status"] == "SUCCESS"
    assert answer["Data"]["Status"] == "waiting: the Mailchimp secret still holds its placeholder key"
    assert registrar.webhooks(audience) == []


# ---------------------------------------------------------------- update
def test_update_with_other_sources_patches_the_same_webhook_and_keeps_the_physical_id(registrar):
    audience = new_audience(registrar.sandbox)
    created = registrar.send("create", registrar.properties(audience))
    (before,) = registrar.webhooks(audience)

    # When the sources change to subscribers only
    answer = registrar.send(
        "update",
        registrar.properties(audience, Sources=["user"]),
        old=registrar.properties(audience),
        PhysicalResourceId=created["PhysicalResourceId"],
    )

    # Then the same webhook now listens to user changes only, under the same physical id
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == created["PhysicalResourceId"]
    (after,) = registrar.webhooks(audience)
    assert after["id"] == before["id"]
    assert after["sources"] == {"user": True, "admin": False, "api": False}


def test_update_with_other_audiences_registers_the_new_and_removes_the_dropped(registrar):
    # Given a registration on two audiences, one of them also with someone else's webhook
    kept, dropped, added = (new_audience(registrar.sandbox) for _ in range(3))
    created = registrar.send("create", registrar.properties(kept, dropped))
    foreign = registrar.sandbox.marketing_sdk().lists.create_list_webhook(
        dropped, {"url": registrar.url_prefix.replace("/v1/", "/other-app/") + "x"}
    )
    (kept_before,) = registrar.webhooks(kept)

    # When the audiences become kept + added
    answer = registrar.send(
        "update",
        registrar.properties(kept, added),
        old=registrar.properties(kept, dropped),
        PhysicalResourceId=created["PhysicalResourceId"],
    )

    # Then added has its webhook, dropped keeps only the foreign one, kept is untouched
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert [hook["url"] for hook in registrar.webhooks(added)] == [registrar.url_prefix + TOKENS[0]]
    assert [hook["id"] for hook in registrar.webhooks(dropped)] == [foreign["id"]]
    assert registrar.webhooks(kept) == [kept_before]


def test_a_rotated_token_with_a_new_revision_moves_the_webhook_to_the_new_token(registrar, receiver):
    audience = new_audience(registrar.sandbox)
    created = registrar.send("create", registrar.properties(audience))
    (before,) = registrar.webhooks(audience)

    # Given a new token put first in the secret (the old one still accepted)
    registrar.put_tokens({"webhook_tokens": ["rotated-registrar-token", TOKENS[0]]})

    # When the stack is updated with a new Revision
    answer = registrar.send(
        "update",
        registrar.properties(audience, Revision="2"),
        old=registrar.properties(audience),
        PhysicalResourceId=created["PhysicalResourceId"],
    )

    # Then the same webhook points at the new token (Mailchimp validated it first)
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    (after,) = registrar.webhooks(audience)
    assert after["id"] == before["id"]
    assert after["url"] == registrar.url_prefix + "rotated-registrar-token"
    assert receiver.requests[-1].path.endswith("/rotated-registrar-token")


def test_a_changed_receiver_url_moves_the_webhook(registrar):
    audience = new_audience(registrar.sandbox)
    old = registrar.properties(audience, Url=registrar.url_prefix.replace("/v1/", "/v0/"))
    created = registrar.send("create", old)

    answer = registrar.send(
        "update", registrar.properties(audience), old=old, PhysicalResourceId=created["PhysicalResourceId"]
    )

    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert [hook["url"] for hook in registrar.webhooks(audience)] == [registrar.url_prefix + TOKENS[0]]


# ---------------------------------------------------------------- delete
def test_delete_removes_the_stack_s_webhooks_and_leaves_others_alone(registrar):
    # Given a registered audience that also has someone else's webhook
    audience = new_audience(registrar.sandbox)
    created = registrar.send("create", registrar.properties(audience))
    foreign = registrar.sandbox.marketing_sdk().lists.create_list_webhook(
        audience, {"url": registrar.url_prefix.replace("/v1/", "/other-app/") + "x"}
    )

    # When the stack is deleted
    answer = registrar.send("delete", registrar.properties(audience), PhysicalResourceId=created["PhysicalResourceId"])

    # Then only ours is gone
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == created["PhysicalResourceId"]
    assert [hook["id"] for hook in registrar.webhooks(audience)] == [foreign["id"]]


def test_delete_completes_when_the_key_was_revoked(registrar):
    # Given a registered audience, then the key revoked in Mailchimp
    audience = new_audience(registrar.sandbox)
    created = registrar.send("create", registrar.properties(audience))
    registrar.sandbox.set_keys(marketing=["another-key-us21"])
    try:
        # When the stack is deleted
        answer = registrar.send(
            "delete", registrar.properties(audience, "gone000000"), PhysicalResourceId=created["PhysicalResourceId"]
        )
    finally:
        registrar.sandbox.set_keys(marketing=[registrar.sandbox.marketing_api_key])

    # Then the delete succeeds (the stack can go), leaving what it could not remove
    assert answer["Status"] == "SUCCESS", answer["Reason"]


def test_delete_of_an_audience_deleted_in_mailchimp_succeeds(registrar):
    answer = registrar.send("delete", registrar.properties("gone000000"), PhysicalResourceId="failed-create")

    assert answer["Status"] == "SUCCESS", answer["Reason"]


# ---------------------------------------------------------------- failures
def test_a_key_mailchimp_refuses_fails_the_create_with_a_clear_reason(registrar):
    audience = new_audience(registrar.sandbox)
    registrar.sandbox.set_keys(marketing=["another-key-us21"])
    try:
        answer = registrar.send("create", registrar.properties(audience))
    finally:
        registrar.sandbox.set_keys(marketing=[registrar.sandbox.marketing_api_key])

    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("Mailchimp refused the API key (401")
    assert "MailchimpSecretArn" in answer["Reason"]


def test_an_unknown_audience_fails_the_create_naming_it(registrar):
    answer = registrar.send("create", registrar.properties("zz99zz99zz"))

    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("audience zz99zz99zz not found")


def test_a_receiver_mailchimp_cannot_validate_fails_without_showing_the_token(registrar, receiver):
    # Given a receiver that refuses Mailchimp's validating GET
    receiver.script = [Answer(404, body=b"")]
    audience = new_audience(registrar.sandbox)

    answer = registrar.send("create", registrar.properties(audience))

    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith(f"Mailchimp could not validate the webhook URL for audience {audience}")
    assert TOKENS[0] not in answer["Reason"]
    assert registrar.webhooks(audience) == []


def test_malformed_properties_fail_naming_the_property(registrar):
    answer = registrar.send("create", registrar.properties("not an id!"))

    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("Audiences must be Mailchimp audience ids")


def test_a_mailchimp_that_never_answers_fails_before_the_function_times_out(registrar):
    # Given Mailchimp holding every request without answering, and 6 s left in the invocation
    audience = new_audience(registrar.sandbox)
    registrar.sandbox.faults(timeout_rate=1.0, timeout_seconds=30)
    started = time.monotonic()

    answer = registrar.send("create", registrar.properties(audience), timeout=6)

    # Then CloudFormation hears FAILED within the invocation: the stack never hangs
    assert answer["Status"] == "FAILED"
    assert time.monotonic() - started < 6


# ---------------------------------------------------------------- rollbacks never get stuck
def test_the_rollback_of_a_create_refused_for_its_properties_succeeds(registrar):
    # Given a create that failed on a malformed audience id
    refused = registrar.send("create", registrar.properties("not an id!"))

    # When CloudFormation rolls it back (a Delete with the same properties)
    answer = registrar.send(
        "delete", registrar.properties("not an id!"), PhysicalResourceId=refused["PhysicalResourceId"]
    )

    # Then the delete succeeds: nothing was registered
    assert answer["Status"] == "SUCCESS", answer["Reason"]


def test_the_rollback_of_an_update_refused_for_its_properties_restores_the_old_registration(registrar):
    # Given a registration, and an update that failed on a malformed audience id
    audience = new_audience(registrar.sandbox)
    created = registrar.send("create", registrar.properties(audience))
    bad = registrar.properties(audience, "not an id!", Sources=["user"])
    refused = registrar.send(
        "update", bad, old=registrar.properties(audience), PhysicalResourceId=created["PhysicalResourceId"]
    )
    assert refused["Status"] == "FAILED"

    # When CloudFormation rolls back (an update from the malformed properties to the old ones)
    answer = registrar.send(
        "update", registrar.properties(audience), old=bad, PhysicalResourceId=created["PhysicalResourceId"]
    )

    # Then the rollback succeeds and the webhook is as before
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    (webhook,) = registrar.webhooks(audience)
    assert webhook["sources"] == {"user": True, "admin": True, "api": False}


def test_a_response_url_nobody_answers_does_not_hold_the_function(registrar):
    # Given a request whose ResponseURL refuses connections (crhelper's own sender would retry forever)
    request = custom_resource_request(
        "mailchimp_webhook_registrar/delete.json", registrar.bucket, registrar.properties("a1b2c3d4e5")
    )
    request["ResponseURL"] = "http://127.0.0.1:9/responses/unanswered"
    started = time.monotonic()

    # When the function runs
    registrar.function.lambda_handler(request, LambdaContext(timeout_seconds=60))

    # Then it ends after a few quick tries
    assert time.monotonic() - started < 10


def test_a_408_from_mailchimp_fails_as_busy_with_a_warning_not_as_our_configuration(registrar, logged):
    # Given Mailchimp answering every call with 408 Request Timeout
    audience = new_audience(registrar.sandbox)
    registrar.sandbox.faults(error_rate=1.0, statuses=[408])

    # When the stack creates the registration
    answer = registrar.send("create", registrar.properties(audience))

    # Then CloudFormation hears it was a passing failure to try again, and the log warns
    assert answer["Status"] == "FAILED"
    assert "is busy (408" in answer["Reason"] and "try the update again" in answer["Reason"]
    failures = [line for line in logged() if line["message"] == "mailchimp webhook registration failed"]
    assert failures and {line["level"] for line in failures} == {"WARNING"}
