"""POST /hooks/{hook}: the real handler with events from events/registration_hook, AWS on moto."""

import base64
import json

import pytest

from chimpbridge.logic import registration_hook
from tests.support.functions import LambdaContext, event, load_function
from tests.support.registration import HOOK_KEYS, hook_body, hook_event, new_id


@pytest.fixture
def hook(email_env):
    return load_function("registration_hook")


def call(function, request):
    response = function.lambda_handler(request, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_a_registration_is_answered_202_and_its_email_queued(hook, email_env):
    # Given the sample event of a Kratos registration hook with a valid key
    body = hook_body(name={"first": "Grace", "last": "Hopper"}, locale="en-US")

    # When it is delivered
    status, answer = call(hook, hook_event(body, trigger_id=new_id()))

    # Then it is accepted, and one email for that person waits on the email queue
    assert status == 202
    assert answer["status"] == "queued" and answer["duplicate"] is False
    (queued,) = email_env.bodies()
    assert queued["recipient"]["email"] == body["email"]
    assert queued["recipient"]["name"] == {"first": "Grace", "last": "Hopper"}
    assert queued["identity_id"] == body["identity_id"]
    assert queued["idempotency_key"] == answer["idempotency_key"]


def test_the_committed_sample_event_is_accepted(email_env, hook):
    # Given events/registration_hook/registration.json with this test's key
    request = event("registration_hook/registration.json")
    request["headers"]["Authorization"] = HOOK_KEYS[0]
    request["headers"]["Ory-Webhook-Trigger-ID"] = new_id()

    # When it is delivered
    status, _ = call(hook, request)

    # Then it is queued
    assert status == 202
    assert len(email_env.bodies()) == 1


def test_a_wrong_key_is_401_and_nothing_is_queued(hook, email_env):
    status, answer = call(hook, hook_event(hook_body(), key="not-a-hook-key", trigger_id=new_id()))

    assert status == 401
    assert answer["type"] == "urn:chimpbridge:problem:unauthorized"
    assert email_env.bodies() == []


def test_the_committed_wrong_key_event_is_401(hook, email_env):
    status, _ = call(hook, event("registration_hook/wrong-key.json"))

    assert status == 401
    assert email_env.bodies() == []


def test_an_oversized_body_is_413(hook, email_env):
    body = hook_body(transient_payload={"padding": "x" * 20_000})

    status, answer = call(hook, hook_event(body, trigger_id=new_id()))

    assert status == 413
    assert answer["type"] == "urn:chimpbridge:problem:payload-too-large"
    assert email_env.bodies() == []


def test_a_missing_key_is_401_even_when_the_body_is_invalid(hook, email_env):
    status, _ = call(hook, hook_event("not json", key=None))

    assert status == 401
    assert email_env.bodies() == []


def test_a_broken_base64_body_is_401_without_the_key_and_422_with_it(hook, email_env):
    # Given a body that API Gateway marked base64 but is not
    unauthenticated = {**hook_event("{}", key=None), "isBase64Encoded": True, "body": "not base64!"}
    authenticated = {**hook_event("{}", trigger_id=new_id()), "isBase64Encoded": True, "body": "not base64!"}
    # Then a caller without the key learns nothing about it; one with the key is told
    assert call(hook, unauthenticated)[0] == 401
    assert call(hook, authenticated)[0] == 422
    assert email_env.bodies() == []


def test_a_body_that_is_not_utf8_is_422(hook, email_env):
    raw = base64.b64encode(b'{"identity_id": "\xff"}').decode()
    status, answer = call(hook, {**hook_event("{}", trigger_id=new_id()), "isBase64Encoded": True, "body": raw})
    assert status == 422
    assert answer["type"] == "urn:chimpbridge:problem:invalid-request"


def test_the_previous_key_is_accepted_during_rotation(hook, email_env):
    status, _ = call(hook, hook_event(hook_body(), key=HOOK_KEYS[1], trigger_id=new_id()))

    assert status == 202


def test_basic_auth_is_accepted_with_the_key_as_password(hook, email_env):
    credentials = base64.b64encode(f"kratos:{HOOK_KEYS[0]}".encode()).decode()

    status, _ = call(hook, hook_event(hook_body(), key=f"Basic {credentials}", trigger_id=new_id()))

    assert status == 202


def test_a_custom_auth_header_is_read(hook, email_env, monkeypatch):
    # Given the hook configured to read the key from X-Hook-Key
    monkeypatch.setenv("HOOK_AUTH_HEADER", "X-Hook-Key")
    function = load_function("registration_hook")
    request = hook_event(hook_body(), key=None, trigger_id=new_id())
    request["headers"]["x-hook-key"] = HOOK_KEYS[0]

    # When Kratos sends it there
    status, _ = call(function, request)

    # Then it is accepted
    assert status == 202


def test_the_all_zero_identity_id_is_422_explaining_the_configuration(hook, email_env):
    # Given a body rendered by a pre-persist hook (the identity is not stored yet)
    body = hook_body(identity_id="00000000-0000-0000-0000-000000000000")

    status, answer = call(hook, hook_event(body, trigger_id=new_id()))

    assert status == 422
    assert answer["type"] == "urn:chimpbridge:problem:hook-not-post-persist"
    assert "registration.after" in answer["detail"] and "response.ignore: true" in answer["detail"]
    assert email_env.bodies() == []


def test_the_sample_pre_persist_event_is_refused(hook, email_env):
    request = event("registration_hook/invalid-pre-persist.json")
    request["headers"]["Authorization"] = HOOK_KEYS[0]

    status, answer = call(hook, request)

    assert status == 422
    assert answer["type"] == "urn:chimpbridge:problem:hook-not-post-persist"


def test_five_deliveries_with_one_trigger_id_queue_one_email(hook, email_env):
    # Given one registration, delivered five times with the same Ory-Webhook-Trigger-ID
    body, trigger_id = hook_body(), new_id()

    answers = [call(hook, hook_event(body, trigger_id=trigger_id)) for _ in range(5)]

    # Then every delivery is a 202, four say duplicate, and one email is queued
    assert [status for status, _ in answers] == [202] * 5
    assert [answer["duplicate"] for _, answer in answers] == [False, True, True, True, True]
    assert len(email_env.bodies()) == 1


def test_the_same_identity_and_flow_under_new_trigger_ids_queue_one_email(hook, email_env):
    body = hook_body()

    for _ in range(3):
        call(hook, hook_event(body, trigger_id=new_id()))

    assert len(email_env.bodies()) == 1


def test_deliveries_without_a_trigger_id_are_deduplicated_by_identity_and_flow(hook, email_env):
    body = hook_body()

    call(hook, hook_event(body))
    status, answer = call(hook, hook_event(body))

    assert status == 202 and answer["duplicate"] is True
    assert len(email_env.bodies()) == 1


def test_another_flow_of_the_same_identity_queues_another_email(hook, email_env):
    first = hook_body()
    second = {**first, "flow": {"id": new_id(), "type": "api"}}

    call(hook, hook_event(first, trigger_id=new_id()))
    call(hook, hook_event(second, trigger_id=new_id()))

    assert len(email_env.bodies()) == 2


def test_a_body_carrying_kratos_cookies_is_refused(hook, email_env):
    # Given a Jsonnet that forwards ctx's cookies (as `ctx` wholesale would)
    body = {**hook_body(), "request_cookies": {"ory_kratos_session": "secret"}}

    status, answer = call(hook, hook_event(body, trigger_id=new_id()))

    assert status == 422
    assert "cookies" in json.dumps(answer["errors"])
    assert email_env.bodies() == []


def test_an_invalid_email_is_422_naming_the_field(hook, email_env):
    status, answer = call(hook, hook_event(hook_body(email="not-an-address"), trigger_id=new_id()))

    assert status == 422
    assert [error["field"] for error in answer["errors"]] == ["email"]


def test_a_hook_without_configured_email_is_422(hook, email_env):
    status, answer = call(hook, hook_event(hook_body(), trigger_id=new_id(), hook="recovery"))

    assert status == 422
    assert answer["type"] == "urn:chimpbridge:problem:hook-not-configured"
    assert "registration" in answer["detail"]


def test_per_flow_mapping_serves_other_hooks(email_env, monkeypatch):
    # Given EMAIL_FLOWS mapping a verification hook to a Mandrill template
    monkeypatch.setenv(
        "EMAIL_FLOWS",
        json.dumps(
            {
                "registration": {"template": "welcome", "subject": "Welcome"},
                "verification": {"mandrill_template": "email-verified"},
            }
        ),
    )
    function = load_function("registration_hook")

    # When Kratos calls /hooks/verification
    status, answer = call(function, hook_event(hook_body(), trigger_id=new_id(), hook="verification"))

    # Then the email is queued for that hook
    assert status == 202
    (queued,) = email_env.bodies()
    assert queued["hook"] == "verification" and answer["hook"] == "verification"


def test_a_newsletter_opt_in_queues_a_pending_signup(hook, email_env):
    # Given a registration whose newsletter trait is true
    body = hook_body(consents={"newsletter": True}, name={"first": "Ada", "last": "Lovelace"}, locale="fr-FR")

    status, answer = call(hook, hook_event(body, trigger_id=new_id()))

    # Then a double opt-in signup for the person is on the signup queue
    assert status == 202 and answer["newsletter"] == "queued"
    (queued,) = email_env.bodies(email_env.signup_queue_url)
    signup = queued["signup"]
    assert signup["email"] == body["email"]
    assert signup["status_if_new"] == "pending"
    assert signup["source"] == "registration-hook"
    assert signup["list_id"] == email_env.list_id
    assert signup["merge_fields"] == {"FNAME": "Ada", "LNAME": "Lovelace"}
    assert signup["language"] == "fr"


def test_no_opt_in_queues_no_signup(hook, email_env):
    status, answer = call(hook, hook_event(hook_body(consents={"newsletter": False}), trigger_id=new_id()))

    assert status == 202 and answer["newsletter"] == "not-requested"
    assert email_env.bodies(email_env.signup_queue_url) == []


def test_a_repeated_opt_in_queues_one_signup(hook, email_env):
    body, trigger_id = hook_body(consents={"newsletter": True}), new_id()

    for _ in range(3):
        call(hook, hook_event(body, trigger_id=trigger_id))

    assert len(email_env.bodies(email_env.signup_queue_url)) == 1


def test_an_overlong_trigger_id_with_a_wrong_key_is_401(hook, email_env):
    # Given a caller without the key, sending a trigger id longer than any Kratos sends
    request = hook_event(hook_body(), key="not-a-hook-key", trigger_id="x" * 201)

    # When it is delivered
    status, answer = call(hook, request)

    # Then it is refused for the key (not a 500 from reading the header before authenticating)
    assert status == 401
    assert answer["type"] == "urn:chimpbridge:problem:unauthorized"
    assert email_env.bodies() == []


def test_an_overlong_trigger_id_is_422_naming_the_header(hook, email_env):
    status, answer = call(hook, hook_event(hook_body(), trigger_id="x" * 201))

    assert status == 422
    assert answer["type"] == "urn:chimpbridge:problem:invalid-request"
    assert [error["field"] for error in answer["errors"]] == ["Ory-Webhook-Trigger-ID"]
    assert email_env.bodies() == []


def test_deliveries_are_remembered_under_the_hooks_key_prefix(hook, email_env):
    call(hook, hook_event(hook_body(), trigger_id=new_id()))

    (record,) = email_env.idempotency_records()
    assert record["id"]["S"].startswith(f"{registration_hook.IDEMPOTENCY_KEY_PREFIX}#")
