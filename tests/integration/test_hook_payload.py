"""What of a hook body reaches Mandrill: only the transient_payload members the flow's
``payload_keys`` allow, as short scalars. Kratos' cookies, headers and whatever else a browser
or a Jsonnet puts there are dropped and counted, never forwarded and never logged. The real
hook and sender functions, AWS on moto, the sandbox's outbox as Mandrill."""

import json

import pytest

from tests.support.functions import LambdaContext, load_function
from tests.support.registration import hook_body, hook_event, kratos_ctx, new_id, queued_email, render_hook_body

SESSION_COOKIE = "MTcwMDAwMDAwMHxzZWNyZXQtc2Vzc2lvbg-" + new_id()
FLOWS = {"registration": {"template": "welcome", "subject": "Welcome", "payload_keys": ["plan", "referral", "seats"]}}


@pytest.fixture
def functions(email_env, monkeypatch):
    monkeypatch.setenv("EMAIL_FLOWS", json.dumps(FLOWS))
    return load_function("registration_hook"), load_function("email_sender")


def deliver_and_send(functions, email_env, body):
    """POST the hook, then hand whatever it queued to the email sender; returns the hook's answer."""
    hook, sender = functions
    response = hook.lambda_handler(hook_event(body, trigger_id=new_id()), LambdaContext())
    queued = email_env.receive()
    if queued:
        result = sender.lambda_handler(email_env.sqs_event(queued), LambdaContext(timeout_seconds=30))
        assert result == {"batchItemFailures": []}
    return response["statusCode"], json.loads(response["body"])


def metrics_named(output: str, name: str) -> float:
    documents = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    return sum(sum(document.get(name, [])) for document in documents)


def payload_sent(email_env, address):
    (sent,) = email_env.sandbox.outbox(to=address)
    variables = {entry["name"]: entry["content"] for entry in sent["merge_vars"][0]["vars"]}
    return sent, variables["transient_payload"]


def test_cookies_inside_the_transient_payload_never_reach_the_outbox(email_env, logged, capsys):
    # Given the shipped configuration, and a body whose transient_payload carries Kratos' session
    # cookie (a Jsonnet put ctx there, or a script sent it with the form)
    functions = load_function("registration_hook"), load_function("email_sender")
    body = hook_body(
        transient_payload={"request_cookies": {"ory_kratos_session": SESSION_COOKIE}, "plan": "pro"},
    )

    # When the hook accepts it and the sender sends the email
    status, _ = deliver_and_send(functions, email_env, body)

    # Then the email goes out, with nothing of the payload (no flow allows any of it)...
    assert status == 202
    assert SESSION_COOKIE not in json.dumps(email_env.sandbox.outbox())
    _, payload = payload_sent(email_env, body["email"])
    assert payload == {}
    # ...the dropped members are counted, and the log says how many, not which, nor their values
    assert metrics_named(capsys.readouterr().out, "HookPayloadDropped") == 2
    lines = [json.dumps(line) for line in logged()]
    assert SESSION_COOKIE not in "".join(lines)
    [dropped] = [json.loads(line) for line in lines if "transient payload members left out" in line]
    assert dropped["dropped"] == 2 and "request_cookies" not in json.dumps(dropped)


def test_allowlisted_members_are_forwarded_next_to_dropped_cookies(functions, email_env):
    # Given a flow that allows "plan", and a payload with the cookies next to it
    body = hook_body(transient_payload={"request_cookies": {"ory_kratos_session": SESSION_COOKIE}, "plan": "pro"})

    # When it is delivered and sent
    deliver_and_send(functions, email_env, body)

    # Then the email carries the allowed member and nothing of the cookie
    sent, payload = payload_sent(email_env, body["email"])
    assert payload == {"plan": "pro"}
    assert SESSION_COOKIE not in json.dumps(sent)


def test_only_allowlisted_short_scalars_are_forwarded(functions, email_env):
    # Given members the flow allows with values of every kind, and members it does not name
    body = hook_body(
        transient_payload={
            "plan": "pro",
            "seats": 3,
            "referral": {"code": "nested objects are never forwarded"},
            "csrf_token": "not allowlisted",
            "headers": {"Cookie": SESSION_COOKIE},
        },
    )

    # When it is delivered and sent
    deliver_and_send(functions, email_env, body)

    # Then only the allowed scalars reach Mandrill
    _, payload = payload_sent(email_env, body["email"])
    assert payload == {"plan": "pro", "seats": 3}


def test_an_overlong_allowlisted_text_is_dropped(functions, email_env):
    body = hook_body(transient_payload={"plan": "x" * 201, "referral": "spring"})

    deliver_and_send(functions, email_env, body)

    _, payload = payload_sent(email_env, body["email"])
    assert payload == {"referral": "spring"}


def test_a_flow_without_payload_keys_forwards_no_payload(email_env, monkeypatch):
    # Given the default flow (no payload_keys) and a payload with a harmless-looking member
    monkeypatch.delenv("EMAIL_FLOWS", raising=False)
    functions = load_function("registration_hook"), load_function("email_sender")
    body = hook_body(transient_payload={"plan": "pro"})

    # When it is delivered and sent
    deliver_and_send(functions, email_env, body)

    # Then the email's transient_payload is empty
    _, payload = payload_sent(email_env, body["email"])
    assert payload == {}


def test_a_message_queued_with_a_whole_payload_is_filtered_by_the_sender(functions, email_env, capsys):
    # Given a message another producer (or an older version) queued with the payload whole
    _, sender = functions
    message = queued_email(
        {"first": "Ada"},
        prefix="payload",
        transient_payload={"plan": "pro", "request_cookies": {"ory_kratos_session": SESSION_COOKIE}},
    )

    # When the sender sends it
    result = sender.lambda_handler(email_env.sqs_event([email_env.queue(message)]), LambdaContext(timeout_seconds=30))

    # Then only the allowed member reaches Mandrill, and the dropped one is counted
    assert result == {"batchItemFailures": []}
    sent, payload = payload_sent(email_env, message["recipient"]["email"])
    assert payload == {"plan": "pro"}
    assert SESSION_COOKIE not in json.dumps(sent)
    assert metrics_named(capsys.readouterr().out, "EmailPayloadDropped") == 1


def test_the_shipped_jsonnet_keeps_objects_of_the_transient_payload_in_kratos():
    # Given a Kratos ctx whose transient payload holds an object (here, the cookies) and plain values
    ctx = kratos_ctx(
        transient_payload={
            "plan": "pro",
            "seats": 3,
            "newsletter": True,
            "cookies": {"ory_kratos_session": SESSION_COOKIE},
            "list": ["a", "b"],
            "essay": "x" * 201,
        }
    )

    # When Kratos renders the hook body
    body = render_hook_body(ctx)

    # Then only the plain, short members are in it
    assert body["transient_payload"] == {"plan": "pro", "seats": 3, "newsletter": True}
    assert SESSION_COOKIE not in json.dumps(body)
