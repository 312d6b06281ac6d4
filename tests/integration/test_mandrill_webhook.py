"""/webhooks/mandrill: the real handler with events from events/mandrill_webhook, signatures made
by Mandrill's documented algorithm (tests/support/mandrill.py), the queue on moto."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.support.functions import LambdaContext, event, load_function
from tests.support.mandrill import (
    CALLED_URL,
    WEBHOOK_KEYS,
    delivery_body,
    forget,
    message_event,
    php_signature,
    signed_delivery,
    webhook_event,
)


@pytest.fixture
def receiver(mandrill_env):
    return load_function("mandrill_webhook")


def call(function, request) -> tuple[int, dict[str, Any]]:
    response = function.lambda_handler(request, LambdaContext(timeout_seconds=10))
    return response["statusCode"], json.loads(response["body"] or "{}")


def queued_events(mandrill_env) -> list[dict[str, Any]]:
    return [item for message in mandrill_env.queued() for item in json.loads(message["Body"])["events"]]


def test_head_answers_200(receiver, mandrill_env):
    status, _ = call(receiver, event("mandrill_webhook/head.json"))

    assert status == 200


def test_a_signed_batch_is_queued_and_answered_200(receiver, mandrill_env):
    # Given a batch of three events signed with the current key
    events = [message_event("send"), message_event("delivered"), message_event("open")]

    # When Mandrill posts it
    status, answer = call(receiver, signed_delivery(events))

    # Then it is answered 200 and the three events wait on the queue, as Mandrill sent them
    assert status == 200
    assert answer == {"status": "queued", "events": 3, "messages": 1}
    assert queued_events(mandrill_env) == events


def test_the_previous_key_is_still_accepted_during_a_rotation(receiver, mandrill_env):
    status, _ = call(receiver, signed_delivery([message_event()], key=WEBHOOK_KEYS[1]))

    assert status == 200


def test_mandrills_test_delivery_is_answered_200_and_queues_nothing(receiver, mandrill_env):
    # Given the committed sample of Mandrill's test: an empty list signed with "test-webhook"
    status, answer = call(receiver, event("mandrill_webhook/test-delivery.json"))

    assert status == 200
    assert answer["status"] == "ok"
    assert mandrill_env.queued() == []


def test_the_test_key_signs_nothing_but_an_empty_list(receiver, mandrill_env):
    status, _ = call(receiver, signed_delivery([message_event()], key="test-webhook"))

    assert status == 401
    assert mandrill_env.queued() == []


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda body: body.replace("delivered", "hard_bounce"), id="tampered-body"),
        pytest.param(lambda body: body + "&extra=1", id="added-field"),
    ],
)
def test_a_tampered_body_is_refused_and_nothing_is_queued(receiver, mandrill_env, tamper):
    # Given a signed delivery whose body was changed on the way
    request = signed_delivery([message_event("delivered")])
    request["body"] = tamper(request["body"])

    status, answer = call(receiver, request)

    # Then it is a 401 problem and nothing is queued
    assert status == 401
    assert answer["type"] == "urn:chimpbridge:problem:unauthorized"
    assert mandrill_env.queued() == []


@pytest.mark.parametrize(
    "url",
    [
        CALLED_URL + "/",
        CALLED_URL + "?a=1",
        CALLED_URL.replace("/v1/", "/v2/"),
        "https://api.example.org/webhooks/mandrill",
    ],
)
def test_a_signature_over_another_url_is_refused(receiver, mandrill_env, url):
    status, _ = call(receiver, signed_delivery([message_event()], url=url))

    assert status == 401
    assert mandrill_env.queued() == []


def test_an_unknown_key_or_no_signature_is_refused(receiver, mandrill_env):
    body, fields = delivery_body([message_event()])

    assert call(receiver, webhook_event(body, signature=php_signature("other-key", CALLED_URL, fields)))[0] == 401
    assert call(receiver, webhook_event(body, signature=None))[0] == 401
    assert mandrill_env.queued() == []


def test_the_configured_url_is_what_mandrill_signs(mandrill_env, monkeypatch):
    # Given the webhook registered on a custom domain, with a query string and a trailing slash
    registered = "https://api.example.org/mail/webhooks/mandrill/?source=mandrill"
    monkeypatch.setenv("MANDRILL_WEBHOOK_URL", registered)
    forget()
    receiver = load_function("mandrill_webhook")

    # Then a signature over that URL is accepted, and one over the URL API Gateway saw is not
    assert call(receiver, signed_delivery([message_event()], url=registered))[0] == 200
    assert call(receiver, signed_delivery([message_event()], url=CALLED_URL))[0] == 401


def test_unicode_values_are_signed_as_utf8(receiver, mandrill_env):
    events = [message_event("send")]
    events[0]["msg"]["subject"] = "Grüße, ☃ and 🎉"

    status, _ = call(receiver, signed_delivery(events))

    assert status == 200
    assert queued_events(mandrill_env)[0]["msg"]["subject"] == "Grüße, ☃ and 🎉"


@pytest.mark.parametrize(
    ("value", "status"),
    [("not json", 422), ('{"event":"send"}', 422), ("[1, 2]", 422)],
)
def test_a_signed_but_malformed_batch_is_refused(receiver, mandrill_env, value, status):
    fields = {"mandrill_events": value}
    request = webhook_event(urlencode(fields), signature=php_signature(WEBHOOK_KEYS[0], CALLED_URL, fields))

    assert call(receiver, request)[0] == status
    assert mandrill_env.queued() == []


def test_a_batch_of_1000_events_is_acknowledged_within_a_second_in_slices(receiver, mandrill_env):
    # Given a full batch: 1,000 events of about 1 KB each
    events = [message_event("delivered") for _ in range(1000)]
    call(receiver, signed_delivery([message_event()]))  # warm: the secret and the clients
    mandrill_env.queued()

    # When Mandrill posts it (three times: the best shows our time, not a busy machine's)
    timings, answers = [], []
    for _ in range(3):
        started = time.perf_counter()
        answers.append(call(receiver, signed_delivery(events)))
        timings.append(time.perf_counter() - started)

    # Then it is acknowledged in under a second, every event queued, in messages SQS takes
    assert all(status == 200 for status, _ in answers)
    assert min(timings) < 1.0, timings
    messages = mandrill_env.queued()
    assert sum(answer["messages"] for _, answer in answers) == len(messages)
    assert all(len(message["Body"].encode()) <= 240_000 for message in messages)
    queued_ids = sorted(e["_id"] for m in messages for e in json.loads(m["Body"])["events"])
    assert queued_ids == sorted([e["_id"] for e in events] * 3)
