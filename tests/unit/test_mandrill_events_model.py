"""Normalising Mandrill's events (pure): what each kind becomes, and the documented schemas."""

import json

import jsonschema
import pytest

from chimpbridge.logic.mandrill_events import METRICS, normalise
from chimpbridge.models.mandrill_events import DETAIL_TYPES, STATE_RANK, STATES
from tests.support.mandrill import SCHEMAS, message_event, ours


def mandrill_schemas() -> dict[str, dict]:
    schemas = [json.loads(path.read_text()) for path in SCHEMAS.glob("email-*.schema.json")]
    return {schema["x-detail-type"]: schema for schema in schemas}


def test_there_is_one_schema_per_mandrill_detail_type():
    assert sorted(mandrill_schemas()) == sorted(DETAIL_TYPES.values())
    assert all("chimpbridge.mandrill" in schema["title"] for schema in mandrill_schemas().values())


def test_every_message_event_has_a_state_a_rank_and_a_metric():
    message_kinds = set(DETAIL_TYPES) - {"blacklist", "whitelist"}
    assert set(STATES) == set(STATE_RANK) == message_kinds
    assert set(METRICS) == set(DETAIL_TYPES)


@pytest.mark.parametrize("kind", sorted(STATES))
def test_every_member_the_model_produces_is_in_its_schema(kind):
    event = normalise(message_event(kind, metadata=ours()))
    assert event is not None

    detail = json.loads(event.detail.to_json())

    schema = mandrill_schemas()[event.detail_type]
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(detail)


def test_the_same_event_has_the_same_id_and_another_event_another():
    first = message_event("open", message_id="abc", ts=1767225600)

    assert normalise(first).detail.event_id == normalise(dict(first)).detail.event_id
    assert normalise(first).detail.event_id != normalise({**first, "ts": 1767225601}).detail.event_id
    assert normalise(first).detail.event_id != normalise({**first, "event": "click"}).detail.event_id


@pytest.mark.parametrize(
    "raw",
    [{"event": "inbound", "ts": 1}, {"event": "send"}, {"event": "send", "ts": "soon"}, {"type": "other", "ts": 1}, {}],
)
def test_what_is_not_a_known_event_is_ignored(raw):
    assert normalise(raw) is None


def test_a_hard_bounce_carries_its_reason_and_diagnostic_and_suppresses():
    event = normalise(message_event("hard_bounce", email="A@Example.com"))

    assert event.detail.reject_reason == "bad_mailbox"
    assert event.detail.diagnostic.startswith("smtp;550")
    assert event.suppress_reason == "hard_bounce"
    assert event.recipient_hash == normalise(message_event("spam", email="a@example.com")).recipient_hash
