"""Mailchimp's documented webhook deliveries, read into events exactly (logic/mailchimp_payload.py),
and every produced detail valid against its published schema (docs/events/)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import urlencode

import jsonschema
import pytest

from chimpbridge.errors import InvalidRequest
from chimpbridge.logic.mailchimp_payload import group_names, parse_form, subscriber_hash, to_event
from chimpbridge.models.audience_events import DETAIL_TYPES
from tests.support.mailchimp_webhook import DOCUMENTED, SCHEMAS, delivery_body

SOURCES = ("user", "admin")


def detail_of(kind: str, **overrides: str) -> dict[str, Any]:
    """The detail, without its change_id (which the dedupe tests check)."""
    event = to_event(parse_form(delivery_body(kind, **overrides).encode()), SOURCES)
    assert event is not None
    detail = json.loads(event.detail.to_json())
    assert re.fullmatch(r"[0-9a-f]{32}", detail.pop("change_id"))
    return dict(detail)


def schema_for(detail_type: str) -> dict[str, Any]:
    (schema,) = [
        document
        for path in SCHEMAS.glob("*.schema.json")
        if (document := json.loads(path.read_text()))["x-detail-type"] == detail_type
    ]
    return schema


def test_nested_form_keys_become_nested_documents_and_numbered_keys_lists():
    # Given the documented profile delivery, with two interest categories
    body = delivery_body("profile").encode()

    # When it is parsed
    document = parse_form(body)

    # Then data[merges][GROUPINGS][n][...] is a list of categories, in order
    assert document["type"] == "profile"
    assert document["data"]["merges"]["FNAME"] == "Mailchimp"
    assert document["data"]["merges"]["GROUPINGS"] == [
        {"id": "1", "unique_id": "1aa2ddd1a", "name": "Interests", "groups": "Group1,Group2"},
        {"id": "2", "unique_id": "2bb3eee2b", "name": "Frequency", "groups": "Weekly"},
    ]


def test_the_subscribe_delivery_is_read_exactly():
    assert detail_of("subscribe") == {
        "schema_version": 1,
        "mailchimp_type": "subscribe",
        "list_id": "a6b5da1054",
        "fired_at": "2009-03-26T21:35:57Z",
        "webhook_sources": ["user", "admin"],
        "email": "api@mailchimp.com",
        "subscriber_hash": subscriber_hash("api@mailchimp.com"),
        "member_id": "8a25ff1d98",
        "email_type": "html",
        "merge_fields": {"EMAIL": "api@mailchimp.com", "FNAME": "Mailchimp", "LNAME": "API"},
        "interests": ["Group1", "Group2"],
        "groupings": [{"id": "1", "unique_id": "1aa2ddd1a", "name": "Interests", "groups": ["Group1", "Group2"]}],
        "ip_signup": "10.20.10.30",
        "ip_opt": "10.20.10.30",
    }


def test_the_unsubscribe_delivery_is_read_exactly():
    assert detail_of("unsubscribe") == {
        "schema_version": 1,
        "mailchimp_type": "unsubscribe",
        "list_id": "a6b5da1054",
        "fired_at": "2009-03-26T21:40:57Z",
        "webhook_sources": ["user", "admin"],
        "email": "api+unsub@mailchimp.com",
        "subscriber_hash": subscriber_hash("api+unsub@mailchimp.com"),
        "member_id": "8a25ff1d98",
        "email_type": "html",
        "merge_fields": {"EMAIL": "api+unsub@mailchimp.com", "FNAME": "Mailchimp", "LNAME": "API"},
        "interests": ["Group1", "Group2"],
        "ip_opt": "10.20.10.30",
        "action": "unsub",
        "reason": "manual",
        "campaign_id": "cb398d21d2",
    }


def test_the_profile_delivery_is_read_exactly():
    assert detail_of("profile") == {
        "schema_version": 1,
        "mailchimp_type": "profile",
        "list_id": "a6b5da1054",
        "fired_at": "2009-03-26T21:31:21Z",
        "webhook_sources": ["user", "admin"],
        "email": "api@mailchimp.com",
        "subscriber_hash": subscriber_hash("api@mailchimp.com"),
        "member_id": "8a25ff1d98",
        "email_type": "html",
        "merge_fields": {"EMAIL": "api@mailchimp.com", "FNAME": "Mailchimp", "LNAME": "API"},
        "interests": ["Group1", "Group2"],
        "groupings": [
            {"id": "1", "unique_id": "1aa2ddd1a", "name": "Interests", "groups": ["Group1", "Group2"]},
            {"id": "2", "unique_id": "2bb3eee2b", "name": "Frequency", "groups": ["Weekly"]},
        ],
        "ip_opt": "10.20.10.30",
    }


def test_the_upemail_delivery_is_read_exactly():
    assert detail_of("upemail") == {
        "schema_version": 1,
        "mailchimp_type": "upemail",
        "list_id": "a6b5da1054",
        "fired_at": "2009-03-26T22:15:09Z",
        "webhook_sources": ["user", "admin"],
        "email": "api+new@mailchimp.com",
        "subscriber_hash": subscriber_hash("api+new@mailchimp.com"),
        "member_id": "51da8c3259",
        "new_email": "api+new@mailchimp.com",
        "old_email": "api+old@mailchimp.com",
        "old_subscriber_hash": subscriber_hash("api+old@mailchimp.com"),
    }


def test_the_cleaned_delivery_is_read_exactly():
    assert detail_of("cleaned") == {
        "schema_version": 1,
        "mailchimp_type": "cleaned",
        "list_id": "a6b5da1054",
        "fired_at": "2009-03-26T22:01:00Z",
        "webhook_sources": ["user", "admin"],
        "email": "api+cleaned@mailchimp.com",
        "subscriber_hash": subscriber_hash("api+cleaned@mailchimp.com"),
        "reason": "hard",
        "campaign_id": "4fjk2ma9xd",
    }


def test_the_campaign_delivery_is_read_exactly():
    # The documented empty reason is left out, like every member a delivery does not carry
    assert detail_of("campaign") == {
        "schema_version": 1,
        "mailchimp_type": "campaign",
        "list_id": "a6b5da1054",
        "fired_at": "2009-03-26T21:31:21Z",
        "webhook_sources": ["user", "admin"],
        "campaign_id": "5aa2102003",
        "subject": "Test Campaign Subject",
        "status": "sent",
    }


@pytest.mark.parametrize("kind", sorted(DOCUMENTED))
def test_every_documented_delivery_gives_a_detail_valid_against_its_schema(kind):
    event = to_event(parse_form(delivery_body(kind).encode()), SOURCES)
    assert event is not None

    schema = schema_for(event.detail_type)

    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(
        json.loads(event.detail.to_json())
    )


def test_there_is_one_schema_per_detail_type():
    schemas = [json.loads(path.read_text()) for path in SCHEMAS.glob("*.schema.json")]
    declared = sorted(schema["x-detail-type"] for schema in schemas if "chimpbridge.mailchimp" in schema["title"])

    assert declared == sorted(DETAIL_TYPES.values())


def test_every_member_the_model_can_produce_is_in_the_member_schemas():
    # Given a delivery carrying every optional member field (web id, address merge field)
    body = delivery_body("subscribe") + "&data[web_id]=123456&data[merges][ADDRESS][addr1]=1 Main St"
    event = to_event(parse_form(body.encode()), SOURCES)
    assert event is not None
    detail = json.loads(event.detail.to_json())

    # Then the schema of each member event accepts it (web_id a number, the address an object)
    assert detail["web_id"] == 123456 and detail["merge_fields"]["ADDRESS"] == {"addr1": "1 Main St"}
    for detail_type in ("Member Subscribed", "Member Unsubscribed", "Member Profile Updated", "Member Cleaned"):
        schema = schema_for(detail_type)
        jsonschema.validate({**detail, "mailchimp_type": schema["properties"]["mailchimp_type"]["const"]}, schema)


def test_the_subscriber_hash_is_the_md5_of_the_lowercased_address():
    expected = hashlib.md5(b"jane.doe@example.com").hexdigest()

    assert subscriber_hash(" Jane.Doe@Example.COM ") == expected


def test_group_names_keep_escaped_commas_and_drop_blanks():
    assert group_names("Group1, Group2,,Cats\\, dogs ") == ["Group1", "Group2", "Cats, dogs"]


def test_fired_at_with_an_offset_is_converted_to_utc():
    detail = detail_of("subscribe", fired_at="2009-03-26T23:35:57+02:00")

    assert detail["fired_at"] == "2009-03-26T21:35:57Z"


def test_an_unknown_type_is_not_an_event():
    document = parse_form(b"type=audience_deleted&fired_at=2009-03-26+21:35:57&data[list_id]=a6b5da1054")

    assert to_event(document, SOURCES) is None


@pytest.mark.parametrize(
    ("kind", "removed", "field"),
    [
        ("subscribe", "data[email]", "data[email]"),
        ("upemail", "data[old_email]", "data[old_email]"),
        ("campaign", "data[id]", "data[id]"),
        ("cleaned", "fired_at", "fired_at"),
    ],
)
def test_a_delivery_without_a_required_field_is_refused_naming_it(kind, removed, field):
    body = urlencode([(name, value) for name, value in DOCUMENTED[kind] if name != removed])

    with pytest.raises(InvalidRequest) as refused:
        to_event(parse_form(body.encode()), SOURCES)

    assert [error.field for error in refused.value.errors] == [field]


def test_an_unreadable_fired_at_is_refused():
    with pytest.raises(InvalidRequest):
        detail_of("subscribe", fired_at="last tuesday")


def test_a_key_that_is_both_a_value_and_a_group_is_refused():
    with pytest.raises(InvalidRequest):
        parse_form(b"data[merges]=x&data[merges][FNAME]=y")


def test_a_body_that_is_not_utf8_is_refused():
    with pytest.raises(InvalidRequest):
        parse_form(b"type=subscribe&data[email]=%FF")


def test_the_same_change_has_the_same_dedupe_key_and_another_change_another():
    first = to_event(parse_form(delivery_body("profile").encode()), SOURCES)
    again = to_event(parse_form(delivery_body("profile").encode()), SOURCES)
    later = to_event(parse_form(delivery_body("profile", fired_at="2009-03-26 21:31:22").encode()), SOURCES)

    assert first is not None and again is not None and later is not None
    assert first.dedupe_key == again.dedupe_key != later.dedupe_key
    assert first.detail.change_id == again.detail.change_id != later.detail.change_id
