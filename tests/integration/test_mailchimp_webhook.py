"""/webhooks/mailchimp/{token}: the real handler with events from events/mailchimp_webhook, AWS on
moto. What the bus published is read back from a queue a rule of the test's own feeds."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from chimpbridge.api import Response, create_app
from chimpbridge.logic import mailchimp_webhook
from chimpbridge.models.audience_events import DETAIL_TYPES, SIGNATURE_HEADER
from tests.support.aws_faults import AwsError, AwsFaults, dynamodb_error
from tests.support.functions import LambdaContext, event, load_function
from tests.support.mailchimp_webhook import (
    DOCUMENTED,
    SCHEMAS,
    SIGNING_KEY,
    WEBHOOK_TOKENS,
    forget,
    signature,
    unique_delivery,
    webhook_event,
)


@pytest.fixture
def receiver(webhook_env):
    return load_function("mailchimp_webhook")


def call(function, request) -> tuple[int, dict[str, Any]]:
    response = function.lambda_handler(request, LambdaContext(timeout_seconds=8))
    return response["statusCode"], json.loads(response["body"] or "{}")


def schema_for(detail_type: str) -> dict[str, Any]:
    for path in SCHEMAS.glob("*.schema.json"):
        schema = json.loads(path.read_text())
        if schema["x-detail-type"] == detail_type:
            return schema
    raise AssertionError(f"no schema for {detail_type}")


def events_error(status: int, code: str, message: str) -> AwsError:
    body = json.dumps({"__type": code, "message": message}).encode()
    return AwsError(status, body, "application/x-amz-json-1.1")


# ---------------------------------------------------------------- publishing
def test_a_subscribe_is_answered_200_and_published_once_on_the_bus(receiver, webhook_env):
    # Given Mailchimp's documented subscribe delivery, about a new person
    body = unique_delivery("subscribe")

    # When it is delivered to the URL with the current token
    status, answer = call(receiver, webhook_event(body))

    # Then it is answered 200 and one Member Subscribed event with the person's merge fields is on the bus
    assert status == 200
    assert answer["status"] == "published" and answer["duplicate"] is False
    (published,) = webhook_env.published()
    assert published["source"] == "chimpbridge.mailchimp"
    assert published["detail-type"] == "Member Subscribed"
    assert published["id"] == answer["event_id"]
    assert published["detail"]["merge_fields"]["FNAME"] == "Mailchimp"
    assert published["detail"]["email"].startswith("person-")


@pytest.mark.parametrize("kind", sorted(DOCUMENTED))
def test_each_documented_type_is_published_as_its_detail_type_with_a_valid_detail(receiver, webhook_env, kind):
    status, _ = call(receiver, webhook_event(unique_delivery(kind)))

    assert status == 200
    (published,) = webhook_env.published()
    assert published["detail-type"] == DETAIL_TYPES[kind]
    schema = schema_for(published["detail-type"])
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(published["detail"])


def test_an_unsubscribe_carries_its_reason_and_campaign(receiver, webhook_env):
    call(receiver, webhook_event(unique_delivery("unsubscribe", **{"data[reason]": "abuse"})))

    (published,) = webhook_env.published()
    assert published["detail"]["reason"] == "abuse"
    assert published["detail"]["action"] == "unsub"
    assert published["detail"]["campaign_id"] == "cb398d21d2"


def test_an_address_change_carries_both_addresses(receiver, webhook_env):
    body = unique_delivery("upemail")

    call(receiver, webhook_event(body))

    (published,) = webhook_env.published()
    detail = published["detail"]
    assert detail["old_email"].startswith("old-") and detail["new_email"].startswith("new-")
    assert detail["email"] == detail["new_email"]


def test_the_committed_sample_events_are_answered(receiver, webhook_env):
    # Given the samples in events/mailchimp_webhook, with this test's token
    def sample(name: str) -> dict[str, Any]:
        request = event(f"mailchimp_webhook/{name}")
        request["path"] = request["path"].replace("local-webhook-token", WEBHOOK_TOKENS[0])
        request["pathParameters"] = {"token": WEBHOOK_TOKENS[0]}
        return request

    # Then validation and every delivery are 200, and the wrong token is 404
    assert call(receiver, sample("validate-get.json"))[0] == 200
    for name in ("subscribe.json", "unsubscribe.json", "upemail.json"):
        assert call(receiver, sample(name))[0] == 200
    assert call(receiver, event("mailchimp_webhook/wrong-token.json"))[0] == 404
    detail_types = sorted(published["detail-type"] for published in webhook_env.published())
    assert detail_types == ["Member Email Changed", "Member Subscribed", "Member Unsubscribed"]


def test_the_configured_sources_travel_with_the_event(webhook_env, monkeypatch):
    monkeypatch.setenv("MAILCHIMP_WEBHOOK_SOURCES", "user")
    forget()
    function = load_function("mailchimp_webhook")

    call(function, webhook_event(unique_delivery("profile")))

    (published,) = webhook_env.published()
    assert published["detail"]["webhook_sources"] == ["user"]


# ---------------------------------------------------------------- at-least-once deliveries
def test_a_delivery_repeated_five_times_publishes_one_event(receiver, webhook_env):
    # Given one change, delivered five times (Mailchimp delivers at least once)
    body = unique_delivery("unsubscribe")

    answers = [call(receiver, webhook_event(body)) for _ in range(5)]

    # Then every delivery is a 200, four say duplicate, and the bus has one event
    assert [status for status, _ in answers] == [200] * 5
    assert [answer["duplicate"] for _, answer in answers] == [False, True, True, True, True]
    assert len({answer["event_id"] for _, answer in answers}) == 1
    assert len(webhook_env.published()) == 1


def test_another_change_of_the_same_member_is_another_event(receiver, webhook_env):
    body = unique_delivery("profile")
    later = body.replace("21%3A31%3A21", "21%3A31%3A22")

    call(receiver, webhook_event(body))
    call(receiver, webhook_event(later))

    assert len(webhook_env.published()) == 2


def test_deliveries_are_remembered_under_the_receivers_key_prefix(receiver, webhook_env):
    call(receiver, webhook_event(unique_delivery("cleaned")))

    records = webhook_env.records()
    assert len(records) == 1
    assert records[0]["id"]["S"].startswith(f"{mailchimp_webhook.IDEMPOTENCY_KEY_PREFIX}#")


# ---------------------------------------------------------------- authentication
def test_a_wrong_token_is_404_like_an_unknown_path_and_nothing_is_published(receiver, webhook_env):
    status, answer = call(receiver, webhook_event(unique_delivery(), token="not-the-token"))
    unknown_status, unknown = call(receiver, {**webhook_event(None, method="GET"), "path": "/no/such/path"})

    assert status == 404
    assert (status, answer) == (unknown_status, unknown)
    assert webhook_env.published() == []


def test_a_wrong_token_is_404_even_for_a_body_that_is_not_a_form(receiver, webhook_env):
    request = {**webhook_event(None, token="not-the-token"), "isBase64Encoded": True, "body": "not base64!"}

    assert call(receiver, request)[0] == 404


def test_the_previous_token_is_accepted_during_rotation(receiver, webhook_env):
    status, _ = call(receiver, webhook_event(unique_delivery(), token=WEBHOOK_TOKENS[1]))

    assert status == 200
    assert len(webhook_env.published()) == 1


def test_the_generated_initial_token_is_accepted(webhook_env):
    # Given the secret as the template creates it: no webhook_tokens yet, a generated initial_token
    webhook_env.use_secret({"webhook_tokens": [], "initial_token": "generated-at-deploy"})
    function = load_function("mailchimp_webhook")

    assert call(function, webhook_event(unique_delivery(), token="generated-at-deploy"))[0] == 200
    assert call(function, webhook_event(unique_delivery(), token=WEBHOOK_TOKENS[0]))[0] == 404


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_validation_requests_are_200_and_publish_nothing(receiver, webhook_env, method):
    status, answer = call(receiver, webhook_event(None, method=method))

    assert status == 200 and answer == {"status": "ok"}
    assert webhook_env.published() == []


def test_a_validation_request_with_a_wrong_token_is_404(receiver, webhook_env):
    assert call(receiver, webhook_event(None, method="GET", token="not-the-token"))[0] == 404


# ---------------------------------------------------------------- signatures
@pytest.fixture
def signed(webhook_env) -> Iterator[Any]:
    """The receiver, with a signing key in the secret (webhooks created with signing)."""
    webhook_env.use_secret({"webhook_tokens": list(WEBHOOK_TOKENS), "signing_key": SIGNING_KEY})
    yield load_function("mailchimp_webhook")


def test_a_correctly_signed_delivery_is_published(signed, webhook_env):
    body = unique_delivery()

    status, _ = call(signed, webhook_event(body, headers={SIGNATURE_HEADER: signature(body)}))

    assert status == 200
    assert len(webhook_env.published()) == 1


@pytest.mark.parametrize(
    "make_header",
    [
        pytest.param(lambda body: None, id="missing"),
        pytest.param(lambda body: signature(body, key="another-key"), id="wrong-key"),
        pytest.param(lambda body: signature(body + "&x=1"), id="other-body"),
        pytest.param(lambda body: signature(body, at=time.time() - 301), id="expired"),
        pytest.param(lambda body: signature(body, at=time.time() + 301), id="from-the-future"),
        pytest.param(lambda body: "v1=abc", id="malformed"),
    ],
)
def test_a_bad_signature_is_401_never_410_and_publishes_nothing(signed, webhook_env, make_header):
    body = unique_delivery()
    header = make_header(body)
    headers = {SIGNATURE_HEADER: header} if header else {}

    status, answer = call(signed, webhook_event(body, headers=headers))

    assert status == 401
    assert answer["type"] == "urn:chimpbridge:problem:unauthorized"
    assert webhook_env.published() == []


def test_a_signature_within_the_tolerance_is_accepted(signed, webhook_env):
    body = unique_delivery()

    status, _ = call(signed, webhook_event(body, headers={SIGNATURE_HEADER: signature(body, at=time.time() - 290)}))

    assert status == 200


# ---------------------------------------------------------------- what is not an event
def test_an_unknown_type_is_answered_200_and_not_published(receiver, webhook_env):
    body = "type=audience_archived&fired_at=2009-03-26+21%3A35%3A57&data%5Blist_id%5D=a6b5da1054"

    status, answer = call(receiver, webhook_event(body))

    assert status == 200 and answer == {"status": "ignored", "type": "audience_archived", "duplicate": False}
    assert webhook_env.published() == []


def test_a_delivery_without_its_email_is_422_naming_the_field(receiver, webhook_env):
    body = "type=subscribe&fired_at=2009-03-26+21%3A35%3A57&data%5Blist_id%5D=a6b5da1054"

    status, answer = call(receiver, webhook_event(body))

    assert status == 422
    assert [error["field"] for error in answer["errors"]] == ["data[email]"]
    assert webhook_env.published() == []


def test_an_oversized_body_is_413(receiver, webhook_env):
    body = unique_delivery(**{"data[merges][FNAME]": "x" * 300_000})

    assert call(receiver, webhook_event(body))[0] == 413
    assert webhook_env.published() == []


def test_an_app_that_must_never_answer_410_answers_500_instead():
    # Given a route that (by some bug) answers 410
    app = create_app(never_answer=(410,))
    app.route("POST", "/gone")(lambda request: Response(410, "{}"))

    result = app.resolve({"httpMethod": "POST", "path": "/gone", "headers": {}, "requestContext": {}})

    # Then Mailchimp would see a 500 (retried), not a 410 (webhook disabled for good)
    assert result["statusCode"] == 500


# ---------------------------------------------------------------- AWS failing
@pytest.fixture
def aws_faults(webhook_env, monkeypatch) -> Iterator[AwsFaults]:
    """AWS reached through a proxy that fails chosen calls; a fresh receiver uses it."""
    with AwsFaults(webhook_env.endpoint) as faults:
        monkeypatch.setenv("AWS_ENDPOINT_URL", faults.url)
        forget()
        yield faults


def test_with_eventbridge_failing_deliveries_are_503_and_after_recovery_published_once(webhook_env, aws_faults):
    # Given EventBridge answering every PutEvents with an internal error
    aws_faults.fail("PutEvents", events_error(500, "InternalException", "try again"), times=1_000)
    receiver = load_function("mailchimp_webhook")
    body = unique_delivery("unsubscribe")

    # When Mailchimp delivers, and retries, while it fails
    failed = [call(receiver, webhook_event(body)) for _ in range(3)]

    # Then each delivery is a 503 (retried by Mailchimp), nothing is published, nothing remembered
    assert [status for status, _ in failed] == [503] * 3
    assert all(answer["type"] == "urn:chimpbridge:problem:publish-failed" for _, answer in failed)
    assert webhook_env.published() == []
    assert webhook_env.records() == []

    # When EventBridge recovers and Mailchimp retries (twice, as it may)
    aws_faults.clear()
    retried = [call(receiver, webhook_event(body)) for _ in range(2)]

    # Then the event is published exactly once
    assert [status for status, _ in retried] == [200, 200]
    assert [answer["duplicate"] for _, answer in retried] == [False, True]
    assert len(webhook_env.published()) == 1


def test_an_entry_eventbridge_refuses_is_a_failure_not_a_publish(webhook_env, aws_faults):
    # Given PutEvents answering 200 with the entry refused (FailedEntryCount 1)
    refused = json.dumps(
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}
    )
    aws_faults.fail("PutEvents", AwsError(200, refused.encode(), "application/x-amz-json-1.1"))
    receiver = load_function("mailchimp_webhook")
    body = unique_delivery("cleaned")

    # When it is delivered, then retried
    first, _ = call(receiver, webhook_event(body))
    second, answer = call(receiver, webhook_event(body))

    # Then the first is a 503 and the retry publishes the one event
    assert (first, second) == (503, 200) and answer["duplicate"] is False
    assert len(webhook_env.published()) == 1


def test_with_dynamodb_failing_the_delivery_is_5xx_and_nothing_is_published(webhook_env, aws_faults):
    aws_faults.fail("PutItem", dynamodb_error("InternalServerError", "try again"), times=1_000)
    receiver = load_function("mailchimp_webhook")

    status, _ = call(receiver, webhook_event(unique_delivery()))

    assert 500 <= status < 600 and status != 410
    assert webhook_env.published() == []


@pytest.mark.slow
def test_a_slow_eventbridge_is_answered_within_mailchimps_ten_seconds(webhook_env, aws_faults):
    # Given a warm receiver, and PutEvents answering after 5 s every time (longer than the client waits)
    receiver = load_function("mailchimp_webhook")
    assert call(receiver, webhook_event(unique_delivery()))[0] == 200
    webhook_env.published()
    error = events_error(500, "InternalException", "try again")
    aws_faults.fail("PutEvents", error, times=1_000, delay_seconds=5)
    body = unique_delivery()

    # When a delivery comes in
    started = time.monotonic()
    status, _ = call(receiver, webhook_event(body))
    elapsed = time.monotonic() - started

    # Then it is a 503 (retried), answered well before the 8 s timeout (room for a cold start), nothing published
    assert status == 503
    assert elapsed < 6
    aws_faults.clear()
    assert call(receiver, webhook_event(body))[0] == 200
    assert len(webhook_env.published()) == 1
