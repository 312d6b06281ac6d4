"""One way to check outside input (chimpbridge.models.checks): the same text rules and the same
JSON reading for the pydantic models, the signup path's dataclasses and the settings, and one
place that turns pydantic's errors into problem fields."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from chimpbridge import settings
from chimpbridge.errors import ConfigurationError, InvalidRequest
from chimpbridge.logic import email_payload
from chimpbridge.models.checks import (
    MAX_JSON_DEPTH,
    Checks,
    address_problem,
    invalid_request,
    json_depth_exceeds,
    read_json,
    text_problem,
)
from chimpbridge.models.fields import AddressText, OneLine

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    *sorted((ROOT / "layers" / "chimpbridge" / "chimpbridge").rglob("*.py")),
    *sorted((ROOT / "functions").glob("*/app.py")),
]
BAD_TEXT = ["a\ud800b", "a\x00b", "a\x07b", "a\x85b", "a\rb", "a\nb", "a\tb", "a\u2028b", "\u202eab", "a\u2066b\u2069"]


class Named(BaseModel):
    name: OneLine
    address: AddressText = "a@example.org"


@pytest.mark.parametrize("value", BAD_TEXT)
def test_the_pydantic_type_and_the_dataclass_collector_say_the_same_thing(value):
    # Given one bad value, checked by the pydantic idiom and by the dataclass idiom
    check = Checks()
    check.value_text("name", value)
    with pytest.raises(ValidationError) as raised:
        Named(name=value)

    # Then both refuse it with the same per-field error
    assert invalid_request(raised.value, "invalid").errors == check.errors
    assert check.errors[0].message == text_problem(value)


@pytest.mark.parametrize(
    "value", ["Ada Lovelace", "\u05d3\u05e0\u05d4\u200f", "Zo\u00eb", "O'Brien-Smith", "\u674e\u5c0f\u9f99"]
)
def test_names_of_every_script_pass(value):
    assert text_problem(value) is None
    assert Named(name=value).name == value


def test_direction_marks_are_allowed_in_names_but_not_in_addresses():
    assert text_problem("ab\u200f") is None
    assert address_problem("ab\u200f@example.org") is not None


def test_lines_may_break_where_the_value_is_text_of_several_lines():
    assert text_problem("one\r\ntwo\tthree", lines=True) is None
    assert text_problem("one\x00two", lines=True) is not None


def test_depth_is_scanned_without_recursion_and_strings_do_not_count():
    assert not json_depth_exceeds('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', MAX_JSON_DEPTH)
    assert not json_depth_exceeds("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, MAX_JSON_DEPTH)
    assert json_depth_exceeds("[" * (MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)
    assert json_depth_exceeds("[" * 1_000_000, MAX_JSON_DEPTH)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"a": NaN}', "a"),
        ('{"a": [1, -Infinity]}', "a.1"),
        ('{"a": {"b": ' + "9" * 41 + "}}", "a.b"),
        ('{"a": "x\\u0000"}', "a"),
        ('{"a": ["\\udc00"]}', "a.0"),
    ],
)
def test_json_that_is_not_valid_data_names_where(body, field):
    with pytest.raises(InvalidRequest) as raised:
        read_json(body)

    assert [error.field for error in raised.value.errors] == [field]


def test_numbers_within_the_bound_read_as_numbers():
    assert read_json('{"a": 12345678901234567890, "b": -1.5e300, "c": 0.1}') == {
        "a": 12345678901234567890,
        "b": -1.5e300,
        "c": 0.1,
    }


def test_a_setting_with_a_line_break_names_the_variable():
    # Given a sender name with a CR/LF (it would become a header line of every email)
    with pytest.raises(ConfigurationError) as raised:
        settings.parse(
            settings.EmailSettings, {"EMAIL_FROM_ADDRESS": "a@example.org", "EMAIL_FROM_NAME": "Acme\r\nBcc: x"}
        )

    assert "EMAIL_FROM_NAME is invalid" in str(raised.value)


def test_a_json_setting_with_nan_names_the_variable():
    with pytest.raises(ConfigurationError) as raised:
        settings.parse(
            settings.SignupSettings,
            {"MAILCHIMP_LIST_ID": "l", "SIGNUP_QUEUE_URL": "q", "SIGNUP_FIELD_MAP": '{"any_merge_tag": NaN}'},
        )

    assert "SIGNUP_FIELD_MAP is invalid: not valid JSON (any_merge_tag:" in str(raised.value)


def _calls(path: Path, attribute: str) -> list[int]:
    tree = ast.parse(path.read_text())
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == attribute
    ]


def test_pydantic_errors_become_problem_fields_in_one_place():
    converting = [
        str(path.relative_to(ROOT))
        for path in SOURCES
        if _calls(path, "errors") and "ValidationError" in path.read_text()
    ]

    assert converting == ["layers/chimpbridge/chimpbridge/models/checks.py"]


def test_the_dataclass_helpers_live_in_the_checks_module_only():
    defining = [
        str(path.relative_to(ROOT))
        for path in SOURCES
        if any(
            isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in {"json_members", "expect", "_JsonErrors"}
            for node in ast.walk(ast.parse(path.read_text()))
        )
    ]

    assert defining == ["layers/chimpbridge/chimpbridge/models/checks.py"]


def test_the_checks_stay_out_of_pydantic_for_the_signup_path():
    imported = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in ast.walk(ast.parse((ROOT / "layers/chimpbridge/chimpbridge/models/checks.py").read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(name and name.startswith("pydantic") for name in imported)


# ---------------------------------------------------------------- properties (hypothesis)
PROPERTIES = hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLEAN_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
NUMBERS = st.integers(-(10**30), 10**30) | st.floats(allow_nan=False, allow_infinity=False)
DOCUMENTS = st.recursive(
    st.none() | st.booleans() | NUMBERS | CLEAN_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(CLEAN_TEXT, inner, max_size=4),
    max_leaves=30,
)


@PROPERTIES
@given(DOCUMENTS)
def test_any_json_of_ours_reads_back_as_it_was_sent(document):
    assert read_json(json.dumps(document)) == document
    assert read_json(json.dumps(document, ensure_ascii=False).encode()) == document


@PROPERTIES
@given(st.text(max_size=30))
def test_both_idioms_agree_on_any_text(value):
    check = Checks()
    passed = check.value_text("name", value)
    try:
        Named(name=value)
        pydantic_errors = []
    except ValidationError as exc:
        pydantic_errors = invalid_request(exc, "invalid").errors
    assert passed == (text_problem(value) is None) == (pydantic_errors == [])
    assert pydantic_errors == check.errors


@PROPERTIES
@given(st.text(max_size=30))
def test_the_hook_payload_keeps_text_by_the_same_rules(value):
    # The transient payload's allowlist keeps a text member exactly when the text rules do
    kept = email_payload.allowed({"plan": value}, {"plan"}).values == {"plan": value}

    assert kept == (text_problem(value, email_payload.MAX_TEXT_LENGTH) is None)
