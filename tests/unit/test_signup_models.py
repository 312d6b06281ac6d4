"""The signup models' JSON: what goes on the signup queue comes back the same, and a message
that is not a queued signup is refused (so it is retried and ends in the DLQ, not applied)."""

import json
from datetime import UTC, datetime

import pytest

from chimpbridge.models.signup import QueuedSignup, Signup, SignupFieldMap

WHEN = datetime(2026, 11, 22, 6, 30, tzinfo=UTC)


def test_a_queued_signup_survives_the_queue():
    # Given a signup with every member set
    queued = QueuedSignup(
        signup=Signup(
            list_id="a1b2c3d4e5",
            email="ann@example.org",
            status_if_new="subscribed",
            merge_fields={"FNAME": "Ann", "ADDRESS": {"city": "Oslo"}},
            tags=["blog"],
            interests={"abc": True},
            language="nb",
            ip_signup="203.0.113.7",
            timestamp_signup=WHEN,
            marketing_permissions=[{"marketing_permission_id": "p1", "enabled": True}],
            source="form",
        ),
        queued_at=WHEN,
        reason="mailchimp-503",
        request_id="r-1",
    )
    # When it is written and read back
    again = QueuedSignup.from_json(queued.to_json())
    # Then nothing changed
    assert again == queued


def test_unset_members_are_left_out_of_the_message():
    queued = QueuedSignup(signup=Signup(list_id="l", email="a@example.org"), queued_at=WHEN, reason="r")
    document = json.loads(queued.to_json())
    assert document == {
        "signup": {
            "list_id": "l",
            "email": "a@example.org",
            "status_if_new": "pending",
            "merge_fields": {},
            "tags": [],
            "interests": {},
            "marketing_permissions": [],
            "source": "json",
        },
        "queued_at": "2026-11-22T06:30:00+00:00",
        "reason": "r",
    }


def test_a_message_written_with_a_z_suffix_is_read():
    text = '{"signup":{"list_id":"l","email":"a@example.org"},"queued_at":"2026-11-22T06:30:00Z","reason":"r"}'
    assert QueuedSignup.from_json(text).queued_at == WHEN


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"signup":{"list_id":"l","email":"a@example.org"},"reason":"r"}',
        '{"signup":{"email":"a@example.org"},"queued_at":"2026-11-22T06:30:00Z","reason":"r"}',
        '{"signup":{"list_id":"l","email":"a@example.org","tags":"blog"},"queued_at":"2026-11-22T06:30:00Z","reason":"r"}',
        '{"signup":{"list_id":"l","email":"a@example.org"},"queued_at":"yesterday","reason":"r"}',
        '{"signup":{"list_id":"l","email":"a@example.org","status_if_new":"cleaned"},"queued_at":"2026-11-22T06:30:00Z","reason":"r"}',
    ],
)
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError):
        QueuedSignup.from_json(text)


def test_field_map_merge_tags_are_upper_case():
    assert SignupFieldMap.from_document({"merge_fields": {"company": " company "}}).merge_fields == {
        "company": "COMPANY"
    }


@pytest.mark.parametrize(
    "document",
    [[], {"tags": "blog"}, {"merge_fields": {"a": 1}}, {"any_merge_tag": "no"}, {"default_tags": ["x"] * 21}],
)
def test_field_map_refuses_what_it_cannot_mean(document):
    with pytest.raises(ValueError):
        SignupFieldMap.from_document(document)
