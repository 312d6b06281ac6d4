"""/connect/mailchimp: the connect function as Lambda loads it, the sandbox's OAuth side over
HTTP, AWS on moto. Every refusal ends on a clear page and leaves the Mailchimp secret as it was."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from chimpbridge.logic import connect_tokens
from sandbox.mailchimp import DEFAULT_LIST_ID, MARKETING_API_KEY
from sandbox.mailchimp.client import SandboxClient
from sandbox.mailchimp.constants import OAUTH_ACCOUNT_EMAIL, OAUTH_SERVER_PREFIX
from tests.support.cloudformation import ResponseBucket
from tests.support.connect import SIGNING_KEY, Browser, ConnectWorld
from tests.support.functions import LambdaContext
from tests.support.webhook_receiver import WebhookReceiver


@pytest.fixture
def world(sandbox: SandboxClient, aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectWorld]:
    yield ConnectWorld(sandbox, aws_env, monkeypatch)


@pytest.fixture
def receiver(world: ConnectWorld) -> Iterator[str]:
    """The API's public URL where Mailchimp's validating GET of a webhook URL is answered."""
    server = WebhookReceiver(path="/chimpbridge/webhooks/mailchimp").start()
    base = server.url.removesuffix("/webhooks/mailchimp")
    world.serve_at(base)
    yield base
    server.stop()


def assert_untouched(world: ConnectWorld) -> None:
    assert world.mailchimp_secret() == {"api_key": MARKETING_API_KEY}
    assert world.secret_versions() == 1


# ---------------------------------------------------------------- start
def test_a_connect_link_redirects_to_the_authorize_page_with_a_bound_state(world: ConnectWorld) -> None:
    # Given
    browser = Browser()

    # When
    page = world.start(browser)

    # Then
    assert page.status == 302
    location = urlsplit(page.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{world.sandbox.url}/oauth2/authorize"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["response_type"] == "code" and query["client_id"] == world.client_id
    assert query["redirect_uri"] == world.redirect_uri
    connect_tokens.check(
        SIGNING_KEY, query["state"], "state", binding=connect_tokens.browser_binding(browser.cookie or "")
    )
    cookie = page.headers["Set-Cookie"]
    assert all(part in cookie for part in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/chimpbridge/connect/mailchimp"))


@pytest.mark.parametrize(
    ("link", "kind"),
    [
        (None, "forged"),
        ("not-a-token", "forged"),
        (connect_tokens.issue("another-key-0123456789abcdef", "link", 900), "forged"),
        (connect_tokens.issue(SIGNING_KEY, "status", 900), "forged"),
        (connect_tokens.issue(SIGNING_KEY, "link", 900, now=time.time() - 1_000), "expired"),
    ],
    ids=["missing", "garbled", "signed with another key", "another purpose", "expired"],
)
def test_a_bad_connect_link_ends_on_a_clear_page(world: ConnectWorld, link: str | None, kind: str) -> None:
    # When
    page = world.call("start", {"link": link} if link else None)

    # Then
    assert page.status == 400 and page.result == kind
    assert "Traceback" not in page.body and "Set-Cookie" not in page.headers
    assert_untouched(world)


def test_a_connect_link_works_once(world: ConnectWorld) -> None:
    # Given
    link = world.link()
    world.start(Browser(), link)

    # When
    again = world.start(Browser(), link)

    # Then
    assert again.status == 400 and again.result == "used"


# ---------------------------------------------------------------- callback
def test_allowing_stores_the_token_and_server_prefix_as_a_new_secret_version(world: ConnectWorld) -> None:
    # When
    page = world.connect()

    # Then
    assert page.status == 200 and page.result == "connected"
    assert OAUTH_ACCOUNT_EMAIL in page.body
    stored = world.mailchimp_secret()
    issued = [token["access_token"] for token in world.sandbox.oauth_tokens()]
    assert stored["access_token"] in issued
    assert stored["server_prefix"] == OAUTH_SERVER_PREFIX and stored["account"] == OAUTH_ACCOUNT_EMAIL
    assert "api_key" not in stored and world.secret_versions() == 2
    assert "Max-Age=0" in page.headers["Set-Cookie"]
    assert stored["access_token"] not in page.body


def test_deny_ends_on_a_clear_page_and_changes_nothing(world: ConnectWorld) -> None:
    # Given
    browser = Browser()
    started = world.start(browser)

    # When
    page = world.callback(browser, world.consent(started.headers["Location"], "deny"))

    # Then
    assert page.status == 400 and page.result == "denied"
    assert_untouched(world)


def test_a_replayed_state_is_refused(world: ConnectWorld) -> None:
    # Given
    browser = Browser()
    query = world.consent(world.start(browser).headers["Location"])
    assert world.callback(browser, query).result == "connected"
    after_first = world.mailchimp_secret()

    # When
    page = world.callback(browser, query)

    # Then
    assert page.status == 400 and page.result == "replayed"
    assert world.mailchimp_secret() == after_first and world.secret_versions() == 2


def test_a_forged_state_is_refused(world: ConnectWorld) -> None:
    # Given
    browser = Browser()
    query = world.consent(world.start(browser).headers["Location"])
    forged = connect_tokens.issue(
        "attacker-key-0123456789abcdef", "state", 600, binding=connect_tokens.browser_binding(browser.cookie or "")
    )

    # When
    page = world.callback(browser, {**query, "state": forged})

    # Then
    assert page.status == 400 and page.result == "forged"
    assert_untouched(world)


def test_an_expired_state_is_refused(world: ConnectWorld) -> None:
    # Given
    browser = Browser()
    query = world.consent(world.start(browser).headers["Location"])
    expired = connect_tokens.issue(
        SIGNING_KEY, "state", 600, binding=connect_tokens.browser_binding(browser.cookie or ""), now=time.time() - 700
    )

    # When
    page = world.callback(browser, {**query, "state": expired})

    # Then
    assert page.status == 400 and page.result == "expired"
    assert_untouched(world)


@pytest.mark.parametrize("other_cookie", [None, "someone-elses-cookie"], ids=["no cookie", "another browser's"])
def test_a_state_from_another_browser_is_refused(world: ConnectWorld, other_cookie: str | None) -> None:
    # Given the operator started in one browser, and the callback arrives in another
    query = world.consent(world.start(Browser()).headers["Location"])

    # When
    page = world.callback(Browser(cookie=other_cookie), query)

    # Then
    assert page.status == 400 and page.result == "foreign"
    assert_untouched(world)


def test_a_second_use_of_a_code_fails_cleanly(world: ConnectWorld) -> None:
    # Given a completed authorization, whose code was exchanged
    first = Browser()
    used = world.consent(world.start(first).headers["Location"])
    assert world.callback(first, used).result == "connected"
    connected = world.mailchimp_secret()

    # When a new authorization comes back with that code
    second = Browser()
    query = world.consent(world.start(second).headers["Location"])
    page = world.callback(second, {**query, "code": used["code"]})

    # Then
    assert page.status == 400 and page.result == "code"
    assert world.mailchimp_secret() == connected


def test_a_code_mailchimp_refuses_leaves_the_secret_untouched(world: ConnectWorld) -> None:
    # Given
    browser = Browser()
    query = world.consent(world.start(browser).headers["Location"])

    # When
    page = world.callback(browser, {**query, "code": "never-issued"})

    # Then
    assert page.status == 400 and page.result == "code"
    assert "Traceback" not in page.body
    assert_untouched(world)


def test_a_wrong_client_secret_ends_on_a_clear_page(world: ConnectWorld) -> None:
    # Given the app's secret in Mailchimp changed, not in our OAuth secret
    world.sandbox.register_oauth_app(world.client_id, "rotated-in-mailchimp", world.redirect_uri)
    browser = Browser()
    query = world.consent(world.start(browser).headers["Location"])

    # When
    page = world.callback(browser, query)

    # Then
    assert page.status == 400 and page.result == "client"
    assert_untouched(world)


# ---------------------------------------------------------------- status and disconnect
def test_status_shows_the_account_data_center_and_webhooks_never_the_token(world: ConnectWorld, receiver: str) -> None:
    # Given
    world.connect()
    webhook = world.sandbox.marketing_sdk().lists.create_list_webhook(
        DEFAULT_LIST_ID, {"url": f"{receiver}/webhooks/mailchimp/secret-token", "events": {"subscribe": True}}
    )

    # When
    page = world.status()

    # Then
    assert page.status == 200
    status = page.json()
    assert status["connected"] is True and status["method"] == "oauth"
    assert (status["account"], status["dc"]) == (OAUTH_ACCOUNT_EMAIL, OAUTH_SERVER_PREFIX)
    assert [hook["id"] for hook in status["webhooks"][DEFAULT_LIST_ID]] == [webhook["id"]]
    assert world.mailchimp_secret()["access_token"] not in page.body and "secret-token" not in page.body


def test_status_names_the_account_of_an_api_key_too(world: ConnectWorld) -> None:
    # When (the secret holds the sandbox's API key)
    status = world.status().json()

    # Then
    assert status["connected"] is True and status["method"] == "api_key"
    assert (status["account"], status["dc"]) == (OAUTH_ACCOUNT_EMAIL, OAUTH_SERVER_PREFIX)
    assert MARKETING_API_KEY not in json.dumps(status)


@pytest.mark.parametrize(
    "token",
    [None, "garbled", connect_tokens.issue(SIGNING_KEY, "disconnect", 3600)],
    ids=["none", "garbled", "a disconnect token"],
)
def test_status_needs_an_operator_token_for_status(world: ConnectWorld, token: str | None) -> None:
    # When
    page = world.call("status", None, {"Authorization": f"Bearer {token}"} if token else {})

    # Then
    assert page.status == 401
    assert page.json()["type"] == "urn:chimpbridge:problem:unauthorized"


def test_an_operator_token_works_once(world: ConnectWorld) -> None:
    # Given
    token = world.operator_token("status")
    assert world.status(token).status == 200

    # When
    again = world.status(token)

    # Then
    assert again.status == 401


def test_after_revocation_status_says_not_connected(world: ConnectWorld) -> None:
    # Given
    world.connect()
    world.sandbox.revoke_oauth(client_id=world.client_id)

    # When
    status = world.status().json()

    # Then
    assert status["connected"] is False and "revoked" in status["reason"]


def test_disconnect_removes_our_webhooks_and_the_token(world: ConnectWorld, receiver: str) -> None:
    # Given
    world.connect()
    lists = world.sandbox.marketing_sdk().lists
    ours = lists.create_list_webhook(DEFAULT_LIST_ID, {"url": f"{receiver}/webhooks/mailchimp/tok"})
    theirs = lists.create_list_webhook(DEFAULT_LIST_ID, {"url": f"{receiver}/webhooks/other-integration"})

    # When
    page = world.disconnect()

    # Then
    assert page.status == 200 and page.json()["webhooks_removed"] == [DEFAULT_LIST_ID]
    remaining = [hook["id"] for hook in world.sandbox.webhooks()]
    assert ours["id"] not in remaining and theirs["id"] in remaining
    stored = world.mailchimp_secret()
    assert stored["access_token"] == "" and stored["disconnected_at"]
    # and no label reaches the token any more (AWSPREVIOUS is the disconnected value too)
    previous = world.secrets.get_secret_value(SecretId=world.mailchimp_secret_arn, VersionStage="AWSPREVIOUS")
    assert json.loads(previous["SecretString"])["access_token"] == ""
    assert world.status().json() == {
        "connected": False,
        "reason": "disconnected: connect again at /connect/mailchimp",
    }


def test_disconnect_needs_its_own_operator_token(world: ConnectWorld) -> None:
    # When
    page = world.disconnect(world.operator_token("status"))

    # Then
    assert page.status == 401
    assert_untouched(world)


def test_connecting_again_after_a_disconnect_restores_the_connection(world: ConnectWorld) -> None:
    # Given
    world.connect()
    world.disconnect()

    # When
    page = world.connect()

    # Then
    assert page.result == "connected"
    assert world.status().json()["connected"] is True


# ---------------------------------------------------------------- uninstall (the stack's delete)
@pytest.fixture
def bucket() -> Iterator[ResponseBucket]:
    answers = ResponseBucket().start()
    yield answers
    answers.stop()


def connection_request(world: ConnectWorld, bucket: ResponseBucket, kind: str) -> dict[str, Any]:
    request_id = str(uuid.uuid4())
    stack_id = "arn:aws:cloudformation:us-east-1:123456789012:stack/chimpbridge/5b2c4a10-9f1e-11ef-8c3a-0a1b2c3d4e5f"
    return {
        "RequestType": kind,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:chimpbridge-ConnectFunction",
        "ResponseURL": bucket.response_url(request_id),
        "StackId": stack_id,
        "RequestId": request_id,
        "LogicalResourceId": "MailchimpConnection",
        "ResourceType": "Custom::MailchimpConnection",
        "PhysicalResourceId": "chimpbridge/5b2c4a10-9f1e-11ef-8c3a-0a1b2c3d4e5f/MailchimpConnection",
        "ResourceProperties": {"MailchimpSecretArn": world.mailchimp_secret_arn},
    }


def test_deleting_the_stack_removes_the_oauth_token(world: ConnectWorld, bucket: ResponseBucket) -> None:
    # Given
    world.connect()
    request = connection_request(world, bucket, "Delete")

    # When
    world.function.lambda_handler(request, LambdaContext(timeout_seconds=29))

    # Then
    assert bucket.answer(request["RequestId"])["Status"] == "SUCCESS"
    assert world.mailchimp_secret()["access_token"] == ""
    previous = world.secrets.get_secret_value(SecretId=world.mailchimp_secret_arn, VersionStage="AWSPREVIOUS")
    assert json.loads(previous["SecretString"])["access_token"] == ""


def test_deleting_the_stack_leaves_an_api_key_alone(world: ConnectWorld, bucket: ResponseBucket) -> None:
    # Given
    request = connection_request(world, bucket, "Delete")

    # When
    world.function.lambda_handler(request, LambdaContext(timeout_seconds=29))

    # Then
    assert bucket.answer(request["RequestId"])["Status"] == "SUCCESS"
    assert_untouched(world)


def test_creating_the_connection_resource_changes_nothing(world: ConnectWorld, bucket: ResponseBucket) -> None:
    # Given
    request = connection_request(world, bucket, "Create")
    del request["PhysicalResourceId"]

    # When
    world.function.lambda_handler(request, LambdaContext(timeout_seconds=29))

    # Then
    answer = bucket.answer(request["RequestId"])
    assert answer["Status"] == "SUCCESS" and answer["PhysicalResourceId"].endswith("/MailchimpConnection")
    assert_untouched(world)
