"""The webhook receivers refuse what no delivery of Mailchimp's or Mandrill's can be: JSON
nested thousands deep, NaN, a 4,000-digit number (Mandrill's events), line breaks and controls
in what identifies a change (Mailchimp's). A 422, never a 500 with a traceback."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from tests.support.functions import LambdaContext, load_function
from tests.support.mailchimp_webhook import unique_delivery
from tests.support.mailchimp_webhook import webhook_event as mailchimp_event
from tests.support.mandrill import CALLED_URL, WEBHOOK_KEYS, mandrill_json, message_event, php_signature
from tests.support.mandrill import webhook_event as mandrill_event


def call(function, request):
    response = function.lambda_handler(request, LambdaContext(timeout_seconds=8))
    return response["statusCode"], json.loads(response["body"] or "{}")


def signed(raw_events: str):
    fields = {"mandrill_events": raw_events}
    return mandrill_event(urlencode(fields), signature=php_signature(WEBHOOK_KEYS[0], CALLED_URL, fields))


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("[" * 5_000 + "]" * 5_000, "mandrill_events"),
        ("NaN", "mandrill_events.0.msg.metadata.plan"),
        ("1" + "0" * 4_000, "mandrill_events.0.msg.metadata.plan"),
    ],
)
def test_a_signed_mandrill_batch_that_is_not_json_of_ours_is_422(mandrill_env, value, field):
    # Given a signed batch whose one event holds the value in its metadata
    receiver = load_function("mandrill_webhook")
    event = message_event("send")
    event["msg"]["metadata"] = {"plan": "PLACEHOLDER"}
    raw = mandrill_json([event]).replace('"PLACEHOLDER"', value)

    # When Mandrill posts it
    status, answer = call(receiver, signed(raw))

    # Then it is a 422 naming where, and nothing is queued
    assert status == 422
    assert [error["field"] for error in answer["errors"]] == [field]
    assert mandrill_env.queued() == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"data[list_id]": "a6b5da1054\r\nX"}, "data[list_id]"),
        ({"data[email]": "person\u202e@example.com"}, "data[email]"),
        ({"fired_at": "2009-03-26 21:35:57\x00"}, "fired_at"),
    ],
)
def test_a_mailchimp_delivery_whose_identity_breaks_the_text_rules_is_422(webhook_env, overrides, field):
    receiver = load_function("mailchimp_webhook")

    status, answer = call(receiver, mailchimp_event(unique_delivery("subscribe", **overrides)))

    assert status == 422
    assert [error["field"] for error in answer["errors"]] == [field]
    assert webhook_env.published() == []
