"""POST /hooks/{hook} refuses values that are valid JSON but not valid data, at the door, with
a 422 naming the field: nothing is queued, so nothing reaches Mandrill's ``to.name``.
The real handler, AWS on moto."""

import json

import pytest

from tests.support.functions import LambdaContext, load_function
from tests.support.registration import hook_body, hook_event, new_id


@pytest.fixture
def hook(email_env):
    return load_function("registration_hook")


def call(function, request):
    response = function.lambda_handler(request, LambdaContext())
    return response["statusCode"], response["multiValueHeaders"]["Content-Type"][0], json.loads(response["body"])


@pytest.mark.parametrize(
    ("name", "field", "message"),
    [
        ({"first": "Ada\r\nBcc: x@example.org"}, "name.first", "Keep this on one line."),
        ({"last": "Love\nlace"}, "name.last", "Keep this on one line."),
        ({"full": "Ada\x00Lovelace"}, "name.full", "Remove the control characters."),
        ({"full": "\u202eecalevoL adA"}, "name.full", "Remove the text-direction control characters."),
    ],
)
def test_line_breaks_controls_and_bidi_overrides_in_the_name_are_422(hook, email_env, name, field, message):
    # Given a hook body whose name would become Mandrill's to.name
    body = hook_body(name=name)

    # When it is delivered
    status, content_type, answer = call(hook, hook_event(body, trigger_id=new_id()))

    # Then it is refused naming the field, and nothing is queued
    assert (status, content_type) == (422, "application/problem+json")
    assert answer["errors"] == [{"field": field, "message": message}]
    assert email_env.bodies() == []


def test_a_direction_override_in_the_address_is_422(hook, email_env):
    status, _, answer = call(hook, hook_event(hook_body(email="ada\u202e@example.com"), trigger_id=new_id()))

    assert status == 422
    assert [error["field"] for error in answer["errors"]] == ["email"]
    assert email_env.bodies() == []


def test_a_line_break_in_the_flow_id_is_422(hook, email_env):
    status, _, answer = call(hook, hook_event(hook_body(flow={"id": "f1\nf2", "type": "browser"}), trigger_id=new_id()))

    assert status == 422
    assert [error["field"] for error in answer["errors"]] == ["flow.id"]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "1" + "0" * 4_000])
def test_nan_infinity_and_overlong_numbers_anywhere_in_the_body_are_422(hook, email_env, token):
    body = json.dumps(hook_body(transient_payload={"plan": "PLACEHOLDER"})).replace('"PLACEHOLDER"', token)

    status, _, answer = call(hook, hook_event(body, trigger_id=new_id()))

    assert status == 422
    assert [error["field"] for error in answer["errors"]] == ["transient_payload.plan"]
    assert email_env.bodies() == []


def test_a_nul_in_the_transient_payload_is_422(hook, email_env):
    status, _, answer = call(hook, hook_event(hook_body(transient_payload={"plan": "pro\x00"}), trigger_id=new_id()))

    assert status == 422
    assert [error["field"] for error in answer["errors"]] == ["transient_payload.plan"]


@pytest.mark.parametrize("depth", [40, 5_000])
def test_deep_json_is_422_about_the_body(hook, email_env, depth):
    # Given a transient payload nested deeper than the bound (and far deeper)
    body = json.dumps(hook_body(transient_payload={"deep": "PLACEHOLDER"}))
    body = body.replace('"PLACEHOLDER"', "[" * depth + "]" * depth)

    status, _, answer = call(hook, hook_event(body, trigger_id=new_id()))

    assert status == 422
    assert answer["errors"] == [{"field": "body", "message": "Nest arrays and objects at most 32 levels deep."}]
    assert email_env.bodies() == []
