"""The official Marketing SDK against the sandbox: the calls our functions make."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import mailchimp_marketing
import pytest
from mailchimp_marketing.api_client import ApiClientError

from sandbox.mailchimp import DEFAULT_LIST_ID, OAUTH_ACCESS_TOKEN, OAUTH_SERVER_PREFIX
from sandbox.mailchimp.client import SandboxClient, sdk_error_body


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


def test_ping_answers_health_status(marketing: mailchimp_marketing.Client) -> None:
    # When
    answer = marketing.ping.get()

    # Then
    assert answer == {"health_status": "Everything's Chimpy!"}


def test_set_list_member_creates_a_new_member_with_status_if_new(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    email = unique_email("new")

    # When
    member = marketing.lists.set_list_member(
        DEFAULT_LIST_ID,
        subscriber_hash(email),
        {"email_address": email, "status_if_new": "pending", "merge_fields": {"FNAME": "Ann", "LNAME": "Lee"}},
    )

    # Then
    assert member["id"] == subscriber_hash(email)
    assert member["email_address"] == email
    assert member["status"] == "pending"
    assert member["merge_fields"] == {"FNAME": "Ann", "LNAME": "Lee"}
    assert member["list_id"] == DEFAULT_LIST_ID
    assert len(member["unique_email_id"]) == 10
    assert member["last_changed"].endswith("+00:00")
    assert {"id", "timestamp_signup", "timestamp_opt", "member_rating", "tags", "stats"} <= set(member)


def test_set_list_member_updates_an_existing_member_without_changing_its_status(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    email = unique_email("existing")
    member_id = subscriber_hash(email)
    marketing.lists.set_list_member(DEFAULT_LIST_ID, member_id, {"email_address": email, "status_if_new": "subscribed"})

    # When
    member = marketing.lists.set_list_member(
        DEFAULT_LIST_ID,
        member_id,
        {"email_address": email, "status_if_new": "pending", "merge_fields": {"FNAME": "Updated"}},
    )

    # Then
    assert member["status"] == "subscribed"
    assert member["merge_fields"]["FNAME"] == "Updated"


def test_get_list_member_returns_the_member_by_hash(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    email = unique_email("lookup")
    marketing.lists.add_list_member(DEFAULT_LIST_ID, {"email_address": email, "status": "subscribed"})

    # When
    member = marketing.lists.get_list_member(DEFAULT_LIST_ID, subscriber_hash(email))

    # Then
    assert member["email_address"] == email
    assert member["status"] == "subscribed"


def test_get_list_member_accepts_the_email_address_in_place_of_the_hash(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    email = unique_email("Mixed.Case")
    marketing.lists.add_list_member(DEFAULT_LIST_ID, {"email_address": email, "status": "subscribed"})

    # When
    member = marketing.lists.get_list_member(DEFAULT_LIST_ID, email.upper())

    # Then
    assert member["id"] == subscriber_hash(email)


def test_get_list_member_of_an_unknown_address_is_resource_not_found(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # When
    with pytest.raises(ApiClientError) as raised:
        marketing.lists.get_list_member(DEFAULT_LIST_ID, subscriber_hash(unique_email("nobody")))

    # Then
    assert raised.value.status_code == 404
    assert sdk_error_body(raised.value)["title"] == "Resource Not Found"


def test_get_list_members_info_pages_through_2500_members_with_a_fields_projection(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client
) -> None:
    # Given
    sandbox.seed(DEFAULT_LIST_ID, 2500)

    # When
    pages = [
        marketing.lists.get_list_members_info(
            DEFAULT_LIST_ID,
            count=1000,
            offset=offset,
            fields=["members.email_address", "members.status", "total_items"],
        )
        for offset in (0, 1000, 2000)
    ]

    # Then
    assert [len(page["members"]) for page in pages] == [1000, 1000, 500]
    assert all(page["total_items"] == 2500 for page in pages)
    assert all(set(page) == {"members", "total_items"} for page in pages)
    members = [member for page in pages for member in page["members"]]
    assert all(set(member) == {"email_address", "status"} for member in members)
    assert len({member["email_address"] for member in members}) == 2500


def test_update_list_member_tags_adds_and_removes_tags(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    email = unique_email("tagged")
    marketing.lists.add_list_member(DEFAULT_LIST_ID, {"email_address": email, "status": "subscribed", "tags": ["old"]})

    # When
    answer = marketing.lists.update_list_member_tags(
        DEFAULT_LIST_ID,
        subscriber_hash(email),
        {"tags": [{"name": "new", "status": "active"}, {"name": "old", "status": "inactive"}]},
    )

    # Then
    assert answer.status_code == 204
    member = marketing.lists.get_list_member(DEFAULT_LIST_ID, subscriber_hash(email))
    assert [tag["name"] for tag in member["tags"]] == ["new"]
    assert member["tags_count"] == 1


def test_add_list_member_twice_raises_member_exists_with_the_problem_document(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    email = unique_email("twice")
    marketing.lists.add_list_member(DEFAULT_LIST_ID, {"email_address": email, "status": "subscribed"})

    # When
    with pytest.raises(ApiClientError) as raised:
        marketing.lists.add_list_member(DEFAULT_LIST_ID, {"email_address": email, "status": "subscribed"})

    # Then
    assert raised.value.status_code == 400
    assert isinstance(raised.value.text, str), "problem+json is not decoded by the SDK, as in production"
    problem = sdk_error_body(raised.value)
    assert problem["title"] == "Member Exists"
    assert problem["status"] == 400
    assert email in problem["detail"]
    assert {"type", "title", "status", "detail", "instance"} <= set(problem)


def test_a_bad_api_key_gives_401(sandbox: SandboxClient) -> None:
    # Given
    client = sandbox.marketing_sdk(api_key="ffffffffffffffffffffffffffffffff-us21")

    # When
    with pytest.raises(ApiClientError) as raised:
        client.ping.get()

    # Then
    assert raised.value.status_code == 401
    assert sdk_error_body(raised.value)["title"] == "API Key Invalid"


def test_an_oauth_access_token_is_accepted_as_bearer(sandbox: SandboxClient) -> None:
    # Given
    client = sandbox.marketing_sdk(api_key="", access_token=OAUTH_ACCESS_TOKEN, server=OAUTH_SERVER_PREFIX)

    # When
    answer = client.lists.get_list(DEFAULT_LIST_ID)

    # Then
    assert answer["name"] == "Sandbox Audience"


def test_get_lists_shows_the_default_audience_with_fname_and_lname(marketing: mailchimp_marketing.Client) -> None:
    # When
    lists = marketing.lists.get_all_lists()
    merge_fields = marketing.lists.get_list_merge_fields(DEFAULT_LIST_ID)

    # Then
    assert [audience["id"] for audience in lists["lists"]] == [DEFAULT_LIST_ID]
    assert [field["tag"] for field in merge_fields["merge_fields"]] == ["FNAME", "LNAME"]


def test_add_list_merge_field_appears_on_every_member(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    email = unique_email("merge")
    marketing.lists.add_list_member(DEFAULT_LIST_ID, {"email_address": email, "status": "subscribed"})

    # When
    field = marketing.lists.add_list_merge_field(DEFAULT_LIST_ID, {"name": "Company", "type": "text"})

    # Then
    assert field["tag"] == "COMPANY"
    member = marketing.lists.get_list_member(DEFAULT_LIST_ID, email)
    assert member["merge_fields"]["COMPANY"] == ""
