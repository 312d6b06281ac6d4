"""Mailchimp's member rules as the sandbox enforces them (through the official SDK)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import mailchimp_marketing
import pytest
import requests
from mailchimp_marketing.api_client import ApiClientError

from sandbox.mailchimp import DEFAULT_LIST_ID
from sandbox.mailchimp.client import SandboxClient, sdk_error_body


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


def problem_of(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ApiClientError) as raised:
        call()
    return {"http_status": raised.value.status_code, **sdk_error_body(raised.value)}


def upsert(client: mailchimp_marketing.Client, email: str, **body: Any) -> dict[str, Any]:
    return dict(client.lists.set_list_member(DEFAULT_LIST_ID, subscriber_hash(email), {"email_address": email, **body}))


@pytest.mark.parametrize("compliance_status", ["unsubscribed", "cleaned"])
def test_a_member_in_compliance_state_cannot_be_resubscribed(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str], compliance_status: str
) -> None:
    # Given
    email = unique_email(compliance_status)
    upsert(marketing, email, status_if_new=compliance_status)

    # When
    problem = problem_of(lambda: upsert(marketing, email, status_if_new="subscribed", status="subscribed"))

    # Then
    assert problem["http_status"] == 400
    assert problem["title"] == "Member In Compliance State"


def test_a_member_in_compliance_state_may_be_set_to_pending(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    email = unique_email("optback")
    upsert(marketing, email, status_if_new="unsubscribed")

    # When
    member = upsert(marketing, email, status_if_new="pending", status="pending")

    # Then
    assert member["status"] == "pending"


def test_a_permanently_deleted_address_cannot_be_added_again(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    email = unique_email("forgotten")
    upsert(marketing, email, status_if_new="subscribed")
    marketing.lists.delete_list_member_permanent(DEFAULT_LIST_ID, subscriber_hash(email))

    # When
    problem = problem_of(lambda: upsert(marketing, email, status_if_new="subscribed"))

    # Then
    assert problem["title"] == "Forgotten Email Not Subscribed"
    assert problem_of(lambda: marketing.lists.get_list_member(DEFAULT_LIST_ID, email))["http_status"] == 404


@pytest.mark.parametrize("domain", ["example.com", "test.com"])
def test_an_address_that_looks_fake_is_an_invalid_resource(marketing: mailchimp_marketing.Client, domain: str) -> None:
    # When
    problem = problem_of(lambda: upsert(marketing, f"someone@{domain}", status_if_new="subscribed"))

    # Then
    assert problem["title"] == "Invalid Resource"
    assert "looks fake or invalid" in problem["detail"]


def test_an_address_that_signed_up_to_many_lists_recently_is_refused(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # When
    problem = problem_of(lambda: upsert(marketing, unique_email("too-many"), status_if_new="subscribed"))

    # Then
    assert problem["title"] == "Invalid Resource"
    assert "signed up to a lot of lists very recently" in problem["detail"]


def test_a_malformed_address_is_an_invalid_resource(marketing: mailchimp_marketing.Client) -> None:
    # When
    problem = problem_of(
        lambda: marketing.lists.add_list_member(DEFAULT_LIST_ID, {"email_address": "no-at-sign", "status": "pending"})
    )

    # Then
    assert problem["title"] == "Invalid Resource"


def test_a_required_merge_field_is_enforced_on_create(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    marketing.lists.add_list_merge_field(DEFAULT_LIST_ID, {"name": "City", "type": "text", "required": True})

    # When
    problem = problem_of(lambda: upsert(marketing, unique_email("nocity"), status_if_new="subscribed"))

    # Then
    assert problem["title"] == "Invalid Resource"
    assert problem["errors"] == [{"field": "CITY", "message": "Please enter a value"}]


def test_skip_merge_validation_lets_a_member_without_required_fields_in(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    marketing.lists.add_list_merge_field(DEFAULT_LIST_ID, {"name": "City", "type": "text", "required": True})
    email = unique_email("skip")

    # When
    member = marketing.lists.set_list_member(
        DEFAULT_LIST_ID,
        subscriber_hash(email),
        {"email_address": email, "status_if_new": "subscribed"},
        skip_merge_validation=True,
    )

    # Then
    assert member["merge_fields"]["CITY"] == ""


def test_tags_in_the_member_body_apply_only_when_the_member_is_created(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    email = unique_email("tags")
    created = upsert(marketing, email, status_if_new="subscribed", tags=["first"])

    # When
    updated = upsert(marketing, email, status_if_new="subscribed", tags=["second"])

    # Then
    assert [tag["name"] for tag in created["tags"]] == ["first"]
    assert [tag["name"] for tag in updated["tags"]] == ["first"]


def test_last_changed_advances_on_every_change_even_within_one_second(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    email = unique_email("changes")
    first = upsert(marketing, email, status_if_new="subscribed")

    # When
    second = upsert(marketing, email, status_if_new="subscribed", merge_fields={"FNAME": "B"})
    third = upsert(marketing, email, status_if_new="subscribed", merge_fields={"FNAME": "C"})

    # Then
    assert first["last_changed"] < second["last_changed"] < third["last_changed"]


def test_since_last_changed_returns_only_members_changed_at_or_after_the_watermark(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given seeded members all changed in the past, and one member changed now
    sandbox.seed(DEFAULT_LIST_ID, 500)
    email = unique_email("recent")
    watermark = upsert(marketing, email, status_if_new="subscribed")["last_changed"]

    # When
    page = marketing.lists.get_list_members_info(DEFAULT_LIST_ID, since_last_changed=watermark, count=1000)
    older = marketing.lists.get_list_members_info(DEFAULT_LIST_ID, before_last_changed=watermark, count=1)

    # Then
    assert [member["email_address"] for member in page["members"]] == [email]
    assert older["total_items"] == 500


def test_an_exclusive_since_last_changed_leaves_out_the_second_itself(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given a member changed at the watermark, and the sandbox reading since_last_changed as
    # Mailchimp's reference words it ("changed after")
    email = unique_email("at-watermark")
    watermark = upsert(marketing, email, status_if_new="subscribed")["last_changed"]
    options = sandbox.options(since_last_changed="exclusive")

    # When
    page = marketing.lists.get_list_members_info(DEFAULT_LIST_ID, since_last_changed=watermark, count=1000)
    sandbox.reset()

    # Then the member changed in that very second is not listed; reset restores "inclusive"
    assert options == {"since_last_changed": "exclusive"}
    assert page["total_items"] == 0
    assert requests.get(f"{sandbox.url}/_sandbox/options", timeout=5).json() == {"since_last_changed": "inclusive"}


@pytest.mark.parametrize(("sort_dir", "descending"), [("ASC", False), ("DESC", True)])
def test_sort_field_last_changed_orders_members(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, sort_dir: str, descending: bool
) -> None:
    # Given
    sandbox.seed(DEFAULT_LIST_ID, 300)

    # When
    page = marketing.lists.get_list_members_info(
        DEFAULT_LIST_ID, count=300, sort_field="last_changed", sort_dir=sort_dir, fields=["members.last_changed"]
    )

    # Then
    changed = [member["last_changed"] for member in page["members"]]
    assert changed == sorted(changed, reverse=descending)
    assert len(set(changed)) > 250, "seeded members have varied last_changed"


def test_seeded_members_have_mixed_statuses_names_and_tags(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client
) -> None:
    # Given
    sandbox.seed(DEFAULT_LIST_ID, 1000, seed=7)

    # When
    members = marketing.lists.get_list_members_info(DEFAULT_LIST_ID, count=1000)["members"]

    # Then
    statuses = {member["status"] for member in members}
    assert statuses == {"subscribed", "unsubscribed", "cleaned", "pending"}
    assert sum(member["status"] == "subscribed" for member in members) > 700
    assert all(member["merge_fields"]["FNAME"] and member["merge_fields"]["LNAME"] for member in members)
    assert any(member["tags"] for member in members)


def test_the_status_filter_counts_only_that_status(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client
) -> None:
    # Given
    sandbox.seed(DEFAULT_LIST_ID, 1000, seed=11)
    everyone = marketing.lists.get_list_members_info(DEFAULT_LIST_ID, count=1000)["members"]

    # When
    unsubscribed = marketing.lists.get_list_members_info(DEFAULT_LIST_ID, status="unsubscribed", count=1000)

    # Then
    expected = sum(member["status"] == "unsubscribed" for member in everyone)
    assert unsubscribed["total_items"] == expected
    assert {member["status"] for member in unsubscribed["members"]} == {"unsubscribed"}


def test_exclude_fields_drops_the_named_fields(sandbox: SandboxClient, marketing: mailchimp_marketing.Client) -> None:
    # Given
    sandbox.seed(DEFAULT_LIST_ID, 3)

    # When
    page = marketing.lists.get_list_members_info(DEFAULT_LIST_ID, exclude_fields=["members._links", "_links"])

    # Then
    assert "_links" not in page
    assert all("_links" not in member and "email_address" in member for member in page["members"])


def test_a_page_larger_than_1000_is_refused(sandbox: SandboxClient) -> None:
    # When (the SDK refuses count > 1000 itself, so ask over plain HTTP)
    response = requests.get(
        f"{sandbox.marketing_url}/lists/{DEFAULT_LIST_ID}/members",
        params={"count": 1001},
        auth=("user", sandbox.marketing_api_key),
        timeout=10,
    )

    # Then
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "count"


def test_archiving_a_member_hides_it_until_it_is_added_again(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    email = unique_email("archived")
    upsert(marketing, email, status_if_new="subscribed")
    marketing.lists.delete_list_member(DEFAULT_LIST_ID, subscriber_hash(email))
    hidden = marketing.lists.get_list_members_info(DEFAULT_LIST_ID)["total_items"]

    # When
    readded = marketing.lists.add_list_member(DEFAULT_LIST_ID, {"email_address": email, "status": "pending"})

    # Then
    assert hidden == 0
    assert readded["status"] == "pending"
    assert marketing.lists.get_list_members_info(DEFAULT_LIST_ID)["total_items"] == 1


def test_batch_subscribe_creates_updates_and_reports_errors_per_member(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given an existing subscribed member
    existing = unique_email("existing")
    new = unique_email("new")
    upsert(marketing, existing, status_if_new="subscribed")

    # When the batch sends it again as pending, with update_existing
    result = marketing.lists.batch_list_members(
        DEFAULT_LIST_ID,
        {
            "members": [
                {"email_address": existing, "status": "pending"},
                {"email_address": new, "status": "subscribed"},
                {"email_address": "fake@example.com", "status": "subscribed"},
            ],
            "update_existing": True,
        },
    )

    # Then its status is overwritten (batch has no status_if_new), and the fake one fails alone
    assert [member["email_address"] for member in result["new_members"]] == [new]
    assert [(m["email_address"], m["status"]) for m in result["updated_members"]] == [(existing, "pending")]
    assert result["error_count"] == 1
    assert result["errors"][0]["email_address"] == "fake@example.com"
    assert result["errors"][0]["error_code"] == "ERROR_GENERIC"


def test_batch_subscribe_without_update_existing_reports_existing_members(
    marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    existing = unique_email("existing")
    upsert(marketing, existing, status_if_new="subscribed")

    # When
    result = marketing.lists.batch_list_members(
        DEFAULT_LIST_ID, {"members": [{"email_address": existing, "status": "pending"}]}
    )

    # Then
    assert result["errors"][0]["error_code"] == "ERROR_CONTACT_EXISTS"
    assert marketing.lists.get_list_member(DEFAULT_LIST_ID, existing)["status"] == "subscribed"


def test_batch_subscribe_refuses_more_than_500_members(marketing: mailchimp_marketing.Client) -> None:
    # Given
    members = [{"email_address": f"bulk{index}@example.net", "status": "subscribed"} for index in range(501)]

    # When
    problem = problem_of(lambda: marketing.lists.batch_list_members(DEFAULT_LIST_ID, {"members": members}))

    # Then
    assert problem["http_status"] == 400


def test_an_unknown_list_is_resource_not_found(marketing: mailchimp_marketing.Client) -> None:
    # When
    problem = problem_of(lambda: marketing.lists.get_list("0000000000"))

    # Then
    assert problem["http_status"] == 404
    assert problem["title"] == "Resource Not Found"
