"""Request validation: the SDK calls our code makes against the sandbox, sent to Prism mock
servers built from the official specifications. Prism answers 422 to a request that breaks
the spec, so these pass only while our requests are valid Mailchimp requests.

Skipped when ../shared/reference/mailchimp or node_modules/.bin/prism (``npm ci``) is absent."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import mailchimp_marketing
import mailchimp_transactional
import pytest
from mailchimp_marketing.api_client import ApiClientError

from sandbox.mailchimp import MARKETING_API_KEY, OAUTH_ACCESS_TOKEN, TRANSACTIONAL_API_KEY
from tests.support.prism import start_prism, stop_prism

# One worker starts the two Prism servers for all of these (pytest -n 2 --dist loadgroup).
pytestmark = pytest.mark.xdist_group("mailchimp-prism")

LIST_ID = "a1b2c3d4e5"
EMAIL = "prism.person@example.net"
MEMBER_HASH = hashlib.md5(EMAIL.encode()).hexdigest()


@pytest.fixture(scope="module")
def prism_marketing_url(mailchimp_spec_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("prism") / "marketing.log"
    process, url = start_prism(mailchimp_spec_dir / "marketing.prism.json", log)
    yield url
    stop_prism(process)


@pytest.fixture(scope="module")
def prism_transactional_url(mailchimp_spec_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("prism") / "transactional.log"
    process, url = start_prism(mailchimp_spec_dir / "transactional.json", log)
    yield url
    stop_prism(process)


@pytest.fixture
def marketing(prism_marketing_url: str) -> mailchimp_marketing.Client:
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": MARKETING_API_KEY})
    client.api_client.host = prism_marketing_url  # Prism serves the spec's paths without /3.0
    return client


@pytest.fixture
def transactional(prism_transactional_url: str) -> mailchimp_transactional.Client:
    client = mailchimp_transactional.Client(TRANSACTIONAL_API_KEY)
    client.api_client.host = prism_transactional_url
    client.api_client.default_output_format = None  # the spec's paths have no .json suffix
    return client


MARKETING_CALLS = {
    "ping": lambda c: c.ping.get(),
    "get_all_lists": lambda c: c.lists.get_all_lists(),
    "get_list": lambda c: c.lists.get_list(LIST_ID),
    "set_list_member create": lambda c: c.lists.set_list_member(
        LIST_ID,
        MEMBER_HASH,
        {"email_address": EMAIL, "status_if_new": "pending", "merge_fields": {"FNAME": "Ann"}, "tags": ["web"]},
    ),
    "set_list_member update": lambda c: c.lists.set_list_member(
        LIST_ID, MEMBER_HASH, {"email_address": EMAIL, "status_if_new": "subscribed", "status": "pending"}
    ),
    "get_list_member": lambda c: c.lists.get_list_member(LIST_ID, MEMBER_HASH),
    "get_list_members_info page": lambda c: c.lists.get_list_members_info(
        LIST_ID, count=1000, offset=2000, fields=["members.email_address", "members.status", "total_items"]
    ),
    "get_list_members_info incremental": lambda c: c.lists.get_list_members_info(
        LIST_ID,
        count=1000,
        since_last_changed="2024-01-01T00:00:00+00:00",
        sort_field="last_changed",
        sort_dir="ASC",
        status="subscribed",
    ),
    "update_list_member_tags": lambda c: c.lists.update_list_member_tags(
        LIST_ID, MEMBER_HASH, {"tags": [{"name": "vip", "status": "active"}]}
    ),
    "add_list_member": lambda c: c.lists.add_list_member(
        LIST_ID, {"email_address": EMAIL, "status": "subscribed", "tags": ["web"]}
    ),
    "update_list_member": lambda c: c.lists.update_list_member(LIST_ID, MEMBER_HASH, {"status": "pending"}),
    "batch_list_members": lambda c: c.lists.batch_list_members(
        LIST_ID, {"members": [{"email_address": EMAIL, "status": "pending"}], "update_existing": True}
    ),
    "add_list_merge_field": lambda c: c.lists.add_list_merge_field(LIST_ID, {"name": "City", "type": "text"}),
    "get_list_merge_fields": lambda c: c.lists.get_list_merge_fields(LIST_ID),
    "delete_list_member": lambda c: c.lists.delete_list_member(LIST_ID, MEMBER_HASH),
    "create_list_webhook": lambda c: c.lists.create_list_webhook(
        LIST_ID,
        {
            "url": "https://hooks.example.net/webhooks/mailchimp/token",
            "events": dict.fromkeys(("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign"), True),
            "sources": {"user": True, "admin": True, "api": False},
        },
    ),
    "update_list_webhook": lambda c: c.lists.update_list_webhook(LIST_ID, "5d9a5e3f7b", {"sources": {"api": True}}),
    "get_list_webhooks": lambda c: c.lists.get_list_webhooks(LIST_ID),
    "delete_list_webhook": lambda c: c.lists.delete_list_webhook(LIST_ID, "5d9a5e3f7b"),
    "create_list_interest_category": lambda c: c.lists.create_list_interest_category(
        LIST_ID, {"title": "Topics", "type": "checkboxes"}
    ),
    # Not delete_list_member_permanent: the SDK posts the JSON body "null" there, which Prism
    # refuses (415) and Mailchimp ignores; it is the SDK's request, not ours.
}


def request_violations(call: Callable[[], object]) -> list[object]:
    """What Prism found wrong with the request. Prism also checks the mock answers it makes
    up from the spec's examples (a 500 listing only "response" locations): not our concern."""
    try:
        call()
    except (ApiClientError, mailchimp_transactional.api_client.ApiClientError) as error:
        text = error.text if isinstance(error.text, dict) else json.loads(str(error.text))
        violations = text.get("validation", [])
        request_side = [violation for violation in violations if violation["location"][0] != "response"]
        if error.status_code == 500 and violations and not request_side:
            return []
        return [error.status_code, text]
    return []


@pytest.mark.parametrize("call", MARKETING_CALLS.values(), ids=MARKETING_CALLS.keys())
def test_marketing_sdk_requests_pass_prism_validation(
    marketing: mailchimp_marketing.Client, call: Callable[[mailchimp_marketing.Client], object]
) -> None:
    # When
    violations = request_violations(lambda: call(marketing))

    # Then
    assert violations == []


def test_an_oauth_bearer_request_passes_prism_validation(prism_marketing_url: str) -> None:
    # Given
    client = mailchimp_marketing.Client()
    client.set_config({"access_token": OAUTH_ACCESS_TOKEN, "server": "us21"})
    client.api_client.host = prism_marketing_url

    # When
    violations = request_violations(client.ping.get)

    # Then
    assert violations == []


def test_prism_refuses_a_request_that_breaks_the_spec(marketing: mailchimp_marketing.Client) -> None:
    # When (PUT needs status_if_new)
    with pytest.raises(ApiClientError) as raised:
        marketing.lists.set_list_member(LIST_ID, MEMBER_HASH, {"email_address": EMAIL})

    # Then
    assert raised.value.status_code == 422


MESSAGE = {
    "from_email": "hello@example.org",
    "from_name": "Sandbox",
    "subject": "Welcome *|FNAME|*",
    "html": "<p>Hi *|FNAME|*</p>",
    "to": [{"email": "person@example.net", "name": "Person", "type": "to"}],
    "merge_language": "mailchimp",
    "global_merge_vars": [{"name": "FNAME", "content": "Ann"}],
    "merge_vars": [{"rcpt": "person@example.net", "vars": [{"name": "FNAME", "content": "Ann"}]}],
    "tags": ["welcome"],
    "metadata": {"website": "https://example.org"},
}
TRANSACTIONAL_CALLS = {
    "users.ping": lambda c: c.users.ping(),
    "messages.send": lambda c: c.messages.send({"message": MESSAGE}),
    "messages.send_template": lambda c: c.messages.send_template(
        {"template_name": "welcome", "template_content": [{"name": "main", "content": "x"}], "message": MESSAGE}
    ),
    "templates.add": lambda c: c.templates.add(
        {"name": "welcome", "code": '<div mc:edit="main"></div>', "subject": "Hi", "from_email": "a@example.org"}
    ),
    "templates.info": lambda c: c.templates.info({"name": "welcome"}),
    "rejects.add": lambda c: c.rejects.add({"email": "blocked@example.net", "comment": "test"}),
}


@pytest.mark.parametrize("call", TRANSACTIONAL_CALLS.values(), ids=TRANSACTIONAL_CALLS.keys())
def test_transactional_sdk_requests_pass_prism_validation(
    transactional: mailchimp_transactional.Client, call: Callable[[mailchimp_transactional.Client], object]
) -> None:
    # When
    violations = request_violations(lambda: call(transactional))

    # Then
    assert violations == []


def test_prism_refuses_a_transactional_request_that_breaks_the_spec(
    transactional: mailchimp_transactional.Client,
) -> None:
    # When (messages/send needs a message)
    violations = request_violations(lambda: transactional.messages.send({}))

    # Then
    assert violations[0] == 422
