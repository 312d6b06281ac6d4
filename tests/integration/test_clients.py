"""The pooled, retrying clients against real sockets (a scripted local HTTP server)."""

import base64
import json
from types import SimpleNamespace

import boto3
import pytest

from chimpbridge import clients
from chimpbridge.deadline import invocation_deadline
from chimpbridge.errors import MailchimpApiError, MandrillApiError
from tests.support.aws import REGION, forget_caches
from tests.support.clock import VirtualClock
from tests.support.scripted_http import RESET, Answer, ScriptedServer

PROBLEM = "application/problem+json"

# Every client here backs off on a virtual clock: the waits it asks for are checked, not waited.
pytestmark = pytest.mark.usefixtures("virtual_clock")


@pytest.fixture
def use_mailchimp(aws_env, make_secret, monkeypatch):
    """Point the Marketing client at ``url`` with a fresh secret holding ``key``; returns the ARN."""

    def use(url, key="key-one-us21", **env):
        arn = make_secret(json.dumps({"api_key": key}))
        monkeypatch.setenv("MAILCHIMP_SECRET_ARN", arn)
        if url is None:
            monkeypatch.delenv("MAILCHIMP_API_URL", raising=False)
        else:
            monkeypatch.setenv("MAILCHIMP_API_URL", url + "/3.0")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        forget_caches()
        return arn

    return use


@pytest.fixture
def use_mandrill(aws_env, make_secret, monkeypatch):
    def use(url, key="md-one"):
        arn = make_secret(json.dumps({"api_key": key}))
        monkeypatch.setenv("MANDRILL_SECRET_ARN", arn)
        monkeypatch.setenv("MANDRILL_API_URL", url + "/api/1.3")
        forget_caches()
        return arn

    return use


def basic_user_key(seen):
    return base64.b64decode(seen.headers["Authorization"].split()[1]).decode().split(":", 1)[1]


def test_data_center_comes_from_the_key_suffix(use_mailchimp):
    use_mailchimp(None, key="0123abcd-us21")
    assert clients.marketing().api_client.host == "https://us21.api.mailchimp.com/3.0"


def test_oauth_secret_uses_server_prefix_and_oauth_header(aws_env, make_secret, monkeypatch):
    with ScriptedServer(Answer(body={"health_status": "Everything's Chimpy!"})) as server:
        arn = make_secret(json.dumps({"access_token": "oauth-token", "server_prefix": "us7"}))
        monkeypatch.setenv("MAILCHIMP_SECRET_ARN", arn)
        forget_caches()
        assert clients.marketing().api_client.host == "https://us7.api.mailchimp.com/3.0"
        monkeypatch.setenv("MAILCHIMP_API_URL", server.url + "/3.0")
        forget_caches()
        clients.marketing().ping.get()
    assert server.requests[0].headers["Authorization"] == "OAuth oauth-token"


def test_base_url_override_is_used_as_is(use_mailchimp):
    with ScriptedServer(Answer(body={"health_status": "Everything's Chimpy!"})) as server:
        use_mailchimp(server.url)
        assert clients.marketing().ping.get() == {"health_status": "Everything's Chimpy!"}
    assert server.requests[0].path == "/3.0/ping"
    assert basic_user_key(server.requests[0]) == "key-one-us21"


def test_hundred_sequential_calls_share_one_connection(use_mailchimp):
    # Given one client and a keep-alive server
    with ScriptedServer(Answer(body={"health_status": "ok"})) as server:
        use_mailchimp(server.url)
        client = clients.marketing()
        # When it makes 100 calls in a row
        for _ in range(100):
            client.ping.get()
    # Then they all travelled over a single TCP connection
    assert len(server.requests) == 100
    assert server.connections == 1


def test_429_then_200_succeeds(use_mailchimp):
    with ScriptedServer(Answer(429, {"title": "Too Many Requests"}, content_type=PROBLEM), Answer()) as server:
        use_mailchimp(server.url)
        assert clients.marketing().ping.get() == {"ok": True}
    assert len(server.requests) == 2


def test_503_with_retry_after_waits_that_long(use_mailchimp, virtual_clock: VirtualClock):
    with ScriptedServer(Answer(503, {"title": "Unavailable"}, headers={"Retry-After": "1"}), Answer()) as server:
        use_mailchimp(server.url)
        clients.marketing().ping.get()
    assert len(server.requests) == 2
    assert virtual_clock.slept == [1.0]


def test_400_is_not_retried_and_keeps_mailchimps_problem(use_mailchimp):
    # Given Mailchimp answering a problem document (as a string, the way the SDK sees it)
    problem = {
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": "Member Exists",
        "status": 400,
        "detail": "jane@example.org is already a list member.",
        "instance": "f1e2d3",
    }
    with ScriptedServer(Answer(400, problem, content_type=PROBLEM)) as server:
        use_mailchimp(server.url)
        # When a call fails
        with pytest.raises(MailchimpApiError) as raised:
            clients.marketing().lists.add_list_member("a1b2c3d4e5", {"email_address": "jane@example.org"})
    # Then it was sent once, is permanent, and carries the parsed fields
    error = raised.value
    assert len(server.requests) == 1
    assert (error.status, error.transient, error.title) == (400, False, "Member Exists")
    assert error.detail == "jane@example.org is already a list member."
    assert error.instance == "f1e2d3"


def test_validation_errors_are_parsed_from_json_bodies_too(use_mailchimp):
    problem = {
        "title": "Invalid Resource",
        "status": 400,
        "detail": "bad",
        "errors": [{"field": "FNAME", "message": "x"}],
    }
    with ScriptedServer(Answer(400, problem)) as server:
        use_mailchimp(server.url)
        with pytest.raises(MailchimpApiError) as raised:
            clients.marketing().lists.set_list_member("a1b2c3d4e5", "h", {"email_address": "a@b.org"})
    assert raised.value.errors == [{"field": "FNAME", "message": "x"}]


def test_connection_reset_is_retried(use_mailchimp):
    with ScriptedServer(RESET, Answer()) as server:
        use_mailchimp(server.url)
        assert clients.marketing().ping.get() == {"ok": True}
    assert len(server.requests) == 2
    assert server.connections == 2


def test_persistent_failure_becomes_a_transient_error(use_mailchimp):
    with ScriptedServer(Answer(503, {"title": "Unavailable"}, content_type=PROBLEM)) as server:
        use_mailchimp(server.url, MAILCHIMP_MAX_ATTEMPTS="3")
        with pytest.raises(MailchimpApiError) as raised:
            clients.marketing().ping.get()
    assert len(server.requests) == 3
    assert raised.value.transient
    assert raised.value.status == 503


def test_error_without_body_is_still_an_error(use_mailchimp):
    with ScriptedServer(Answer(404, b"")) as server:
        use_mailchimp(server.url)
        with pytest.raises(MailchimpApiError) as raised:
            clients.marketing().lists.get_list("nope")
    assert raised.value.status == 404
    assert not raised.value.transient


def test_retry_budget_stops_at_the_remaining_time(use_mailchimp, virtual_clock: VirtualClock):
    # Given a server that always says Retry-After 1 s and a generous attempt count
    with ScriptedServer(Answer(503, {"title": "Unavailable"}, headers={"Retry-After": "1"})) as server:
        use_mailchimp(server.url, MAILCHIMP_MAX_ATTEMPTS="10", MAILCHIMP_RETRY_BUDGET_SECONDS="30")
        # When only 3.2 s of the invocation remain (1.5 s is kept back for the handler)
        context = SimpleNamespace(get_remaining_time_in_millis=lambda: 3200)
        with invocation_deadline(context), pytest.raises(MailchimpApiError):
            clients.marketing().ping.get()
    # Then it gave up before the deadline after a couple of attempts, instead of ten: it never
    # waited past the 1.7 s left before the margin
    assert 2 <= len(server.requests) <= 3
    assert 0 < sum(virtual_clock.slept) < 1.7


def test_401_rereads_the_secret_once_and_retries(use_mailchimp, aws_env):
    # Given a client built with a key that was rotated since
    with ScriptedServer(Answer(401, {"title": "API Key Invalid"}, content_type=PROBLEM), Answer()) as server:
        arn = use_mailchimp(server.url, key="old-us21")
        client = clients.marketing()
        boto3.client("secretsmanager", endpoint_url=aws_env, region_name=REGION).put_secret_value(
            SecretId=arn, SecretString=json.dumps({"api_key": "new-us21"})
        )
        # When a call is refused
        assert client.ping.get() == {"ok": True}
    # Then the secret was read again and the call repeated once with the new key
    assert [basic_user_key(seen) for seen in server.requests] == ["old-us21", "new-us21"]


def test_401_with_an_unchanged_secret_fails_without_retrying(use_mailchimp):
    with ScriptedServer(Answer(401, {"title": "API Key Invalid"}, content_type=PROBLEM)) as server:
        use_mailchimp(server.url)
        with pytest.raises(MailchimpApiError) as raised:
            clients.marketing().ping.get()
    assert raised.value.status == 401
    assert len(server.requests) == 1


def test_mandrill_errors_are_normalised(use_mandrill):
    error = {"status": "error", "code": 5, "name": "Unknown_Template", "message": "No such template"}
    with ScriptedServer(Answer(500, error)) as server:
        use_mandrill(server.url)
        with pytest.raises(MandrillApiError) as raised:
            clients.transactional().templates.info({"name": "welcome"})
    assert raised.value.name == "Unknown_Template"
    assert raised.value.code == 5
    assert raised.value.transient


def test_mandrill_calls_use_json_suffix_and_one_connection(use_mandrill):
    with ScriptedServer(Answer(body="PONG!")) as server:
        use_mandrill(server.url)
        client = clients.transactional()
        for _ in range(20):
            assert client.users.ping() == "PONG!"
    assert server.requests[0].path == "/api/1.3/users/ping.json"
    assert json.loads(server.requests[0].body)["key"] == "md-one"
    assert server.connections == 1


def test_mandrill_401_rereads_the_key(use_mandrill, aws_env):
    invalid = {"status": "error", "code": -1, "name": "Invalid_Key", "message": "Invalid API key"}
    with ScriptedServer(Answer(401, invalid), Answer(body="PONG!")) as server:
        arn = use_mandrill(server.url, key="md-old")
        client = clients.transactional()
        boto3.client("secretsmanager", endpoint_url=aws_env, region_name=REGION).put_secret_value(
            SecretId=arn, SecretString=json.dumps({"api_key": "md-new"})
        )
        assert client.users.ping() == "PONG!"
        assert client.users.ping() == "PONG!"
    keys = [json.loads(seen.body)["key"] for seen in server.requests]
    assert keys == ["md-old", "md-new", "md-new"]


def test_mandrill_post_is_not_repeated_after_a_5xx(use_mandrill):
    # Given a send answered 500: Mandrill may have sent it
    error = {"status": "error", "code": -1, "name": "GeneralError", "message": "try later"}
    with ScriptedServer(Answer(500, error), Answer(body=[{"status": "sent"}])) as server:
        use_mandrill(server.url)
        # When the SDK sends
        with pytest.raises(MandrillApiError) as raised:
            clients.transactional().messages.send({"message": {"to": [{"email": "a@example.org"}]}})
    # Then it went out once; the caller (the queue) decides whether to try again
    assert len(server.requests) == 1
    assert raised.value.transient
    assert not raised.value.answer_lost


def test_mandrill_post_is_repeated_after_a_429(use_mandrill):
    busy = {"status": "error", "code": -1, "name": "Too_Many_Requests", "message": "slow down"}
    with ScriptedServer(Answer(429, busy), Answer(body=[{"status": "sent"}])) as server:
        use_mandrill(server.url)
        assert clients.transactional().messages.send({"message": {}}) == [{"status": "sent"}]
    assert len(server.requests) == 2


def test_a_dropped_post_is_an_answer_lost_and_not_repeated(use_mandrill):
    # Given a connection that drops after the send arrived
    with ScriptedServer(RESET, Answer(body=[{"status": "sent"}])) as server:
        use_mandrill(server.url)
        with pytest.raises(MandrillApiError) as raised:
            clients.transactional().messages.send({"message": {}})
    # Then it is not sent again, and the caller learns the answer was lost
    assert len(server.requests) == 1
    assert raised.value.answer_lost


def test_a_post_that_never_connected_is_not_an_answer_lost(use_mandrill):
    # Given nothing listening on the port
    with ScriptedServer() as server:
        closed_url = server.url
    use_mandrill(closed_url)
    # When a send is attempted
    with pytest.raises(MandrillApiError) as raised:
        clients.transactional().messages.send({"message": {}})
    # Then nothing can have been sent, so it is an ordinary transient failure
    assert raised.value.status is None
    assert raised.value.transient
    assert not raised.value.answer_lost


def test_a_post_waits_for_its_answer_beyond_the_retry_budget(use_mandrill, monkeypatch):
    # Given a send Mandrill answers after 1 s, a 0.5 s retry budget and a 3 s read timeout
    monkeypatch.setenv("MAILCHIMP_RETRY_BUDGET_SECONDS", "0.5")
    monkeypatch.setenv("MAILCHIMP_READ_TIMEOUT_SECONDS", "3")
    with ScriptedServer(Answer(body=[{"status": "sent"}], delay=1.0)) as server:
        use_mandrill(server.url)
        # When the SDK sends
        result = clients.transactional().messages.send({"message": {}})
    # Then the budget (which bounds repeats) did not cut the wait short: the answer arrived
    assert result == [{"status": "sent"}]
    assert len(server.requests) == 1


def test_a_post_is_not_repeated_after_a_429_without_time_for_its_whole_wait(use_mandrill, monkeypatch):
    # Given 4 s left in the invocation (2.5 s before the margin) and a send that needs 3.5 s
    # (0.5 s to connect, 3 s to read), answered 429 at once
    monkeypatch.setenv("MAILCHIMP_CONNECT_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("MAILCHIMP_READ_TIMEOUT_SECONDS", "3")
    busy = {"status": "error", "code": -1, "name": "Too_Many_Requests", "message": "slow down"}
    with ScriptedServer(Answer(429, busy), Answer(body=[{"status": "sent"}])) as server:
        use_mandrill(server.url)
        client = clients.transactional()
        context = SimpleNamespace(get_remaining_time_in_millis=lambda: 4000)
        # When the SDK sends
        with invocation_deadline(context), pytest.raises(MandrillApiError) as raised:
            client.messages.send({"message": {}})
    # Then it is not repeated with a read timeout too short to hear the answer; the 429 goes
    # back to the caller (nothing was sent: safe to try again later)
    assert raised.value.status == 429
    assert not raised.value.answer_lost
    assert len(server.requests) == 1
