"""The sandbox's building blocks without HTTP: generated members, projections, merge languages."""

from __future__ import annotations

import json
import random

import pytest

from sandbox.mailchimp.audiences import Audience
from sandbox.mailchimp.member_documents import STATUS_CODES, subscriber_hash
from sandbox.mailchimp.members import MemberQuery
from sandbox.mailchimp.merge_language import render
from sandbox.mailchimp.projection import parse_paths, project


@pytest.fixture
def audience() -> Audience:
    return Audience(id="storage01", name="Storage", base_url="http://127.0.0.1:1", web_id=1)


def test_a_generated_member_serialises_exactly_like_its_document(audience: Audience) -> None:
    # Given
    audience.add_merge_field({"name": "Company", "type": "text"})
    audience.members.seed(200, random.Random(3), 1_700_000_000)

    # When
    texts = audience.members.json_texts(audience.members.order)
    mismatches = [
        slot
        for slot, text in zip(audience.members.order, texts, strict=True)
        if json.loads(text) != audience.members.document(slot)
    ]

    # Then
    assert mismatches == []


def test_a_generated_member_is_found_by_the_md5_of_its_lowercased_address(audience: Audience) -> None:
    # Given
    audience.members.seed(10, random.Random(5), 1_700_000_000)
    document = audience.members.document(audience.members.order[7])

    # When
    slot = audience.members.find(subscriber_hash(document["email_address"].upper()))

    # Then
    assert slot == audience.members.order[7]
    assert document["id"] == subscriber_hash(document["email_address"])


def test_since_and_before_last_changed_split_an_audience_without_overlap(audience: Audience) -> None:
    # Given
    audience.members.seed(1000, random.Random(9), 1_700_000_000)
    watermark = sorted(audience.members.last_changed)[500]

    # When
    since = audience.members.select(MemberQuery(since_last_changed=watermark))
    before = audience.members.select(MemberQuery(before_last_changed=watermark))

    # Then
    assert sorted([*since, *before]) == sorted(audience.members.order)


def test_counts_by_status_cover_every_seeded_member(audience: Audience) -> None:
    # Given
    audience.members.seed(1000, random.Random(1), 1_700_000_000)

    # When
    counts = audience.members.counts_by_status()

    # Then
    assert sum(counts.values()) == 1000
    assert set(counts) == set(STATUS_CODES)


@pytest.mark.parametrize(
    ("fields", "excluded", "expected"),
    [
        ("members.email_address,total_items", None, {"members": [{"email_address": "a"}], "total_items": 1}),
        ("members.merge_fields.FNAME", None, {"members": [{"merge_fields": {"FNAME": "Ann"}}]}),
        ("members,members.id", None, {"members": [{"email_address": "a", "merge_fields": {"FNAME": "Ann"}}]}),
        (None, "members.merge_fields,total_items", {"members": [{"email_address": "a"}]}),
    ],
)
def test_fields_and_exclude_fields_project_nested_documents(
    fields: str | None, excluded: str | None, expected: dict[str, object]
) -> None:
    # Given
    document = {"members": [{"email_address": "a", "merge_fields": {"FNAME": "Ann"}}], "total_items": 1}

    # When
    projected = project(document, parse_paths(fields), parse_paths(excluded))

    # Then
    assert projected == expected


@pytest.mark.parametrize(
    ("template", "variables", "expected"),
    [
        ("Hi *|FNAME|*", {"fname": "Ann"}, "Hi Ann"),
        ("Hi *|UNKNOWN|*!", {}, "Hi !"),
        ("*|IF:VIP|*gold*|ELSE:|*plain*|END:IF|*", {"VIP": ""}, "plain"),
        ("*|IF:PLAN=pro|*pro*|END:IF|*", {"PLAN": "pro"}, "pro"),
        ("*|IFNOT:VIP|*not vip*|END:IF|*", {}, "not vip"),
    ],
)
def test_the_mailchimp_merge_language(template: str, variables: dict[str, object], expected: str) -> None:
    # When
    rendered = render(template, "mailchimp", variables)

    # Then
    assert rendered == expected


@pytest.mark.parametrize(
    ("template", "variables", "expected"),
    [
        ("{{name}}", {"name": "<b>"}, "&lt;b&gt;"),
        ("{{{name}}}", {"name": "<b>"}, "<b>"),
        ("{{#if vip}}yes{{/if}}{{#unless vip}}no{{/unless}}", {"vip": False}, "no"),
        ("{{#each items}}{{@index}}={{name}};{{/each}}", {"items": [{"name": "a"}, {"name": "b"}]}, "0=a;1=b;"),
        ("{{user.city}}{{! a comment }}", {"user": {"city": "Oslo"}}, "Oslo"),
    ],
)
def test_the_handlebars_merge_language(template: str, variables: dict[str, object], expected: str) -> None:
    # When
    rendered = render(template, "handlebars", variables)

    # Then
    assert rendered == expected


@pytest.mark.parametrize(
    ("fields", "excluded"),
    [
        ("email_address,status,last_changed", None),
        ("id,merge_fields.FNAME,tags", None),
        ("stats.avg_open_rate,tags.name", None),
        (None, "_links,location,merge_fields.LNAME"),
        ("email_address,stats,_links", "_links"),
    ],
)
def test_a_projected_page_of_generated_and_written_members_matches_projecting_each_document(
    audience: Audience, fields: str | None, excluded: str | None
) -> None:
    # Given generated members, one of them since written
    audience.members.seed(50, random.Random(4), 1_700_000_000)
    written = audience.members.order[10]
    document = dict(audience.members.document(written), status="unsubscribed")
    audience.members.replace(written, document, 1_700_000_100)
    field_tree, excluded_tree = parse_paths(fields), parse_paths(excluded)

    # When
    texts = audience.members.json_texts(audience.members.order, field_tree, excluded_tree)

    # Then
    expected = [project(audience.members.document(slot), field_tree, excluded_tree) for slot in audience.members.order]
    assert [json.loads(text) for text in texts] == expected
