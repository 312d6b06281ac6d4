"""The transient_payload allowlist: by key, scalars within limits, everything else counted."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chimpbridge.errors import ConfigurationError
from chimpbridge.logic.email_payload import MAX_TEXT_LENGTH, allowed
from chimpbridge.settings import EmailFlowSettings, parse

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)


@settings(deadline=None)  # a busy machine must not fail a property
@given(payload=st.dictionaries(st.text(max_size=10), json_values, max_size=8), keys=st.sets(st.text(max_size=10)))
def test_what_is_kept_is_allowlisted_and_scalar_and_the_rest_is_counted(payload, keys):
    result = allowed(payload, keys)

    assert set(result.values) <= keys
    assert result.dropped == len(payload) - len(result.values)
    for value in result.values.values():
        assert isinstance(value, bool | int | float | str)
        assert not isinstance(value, str) or len(value) <= MAX_TEXT_LENGTH


@pytest.mark.parametrize(
    "value",
    [
        {"ory_kratos_session": "x"},
        ["a"],
        None,
        float("nan"),
        float("inf"),
        "x" * 201,
        "two\nlines",
        "\u202eevil",
        10**20,
    ],
)
def test_values_that_are_not_short_scalars_are_dropped(value):
    assert allowed({"plan": value}, {"plan"}).dropped == 1


@pytest.mark.parametrize("value", ["pro", "", 3, -1.5, True, "x" * 200, "Zoë's plan"])
def test_short_scalars_are_kept(value):
    assert allowed({"plan": value}, {"plan"}).values == {"plan": value}


def flows(payload_keys):
    document = {"registration": {"template": "welcome", "subject": "Hi", "payload_keys": payload_keys}}
    return parse(EmailFlowSettings, {"EMAIL_FLOWS": json.dumps(document)}).flows


def test_payload_keys_are_read_from_email_flows():
    assert flows(["plan", "referral"])["registration"].payload_keys == ["plan", "referral"]


@pytest.mark.parametrize(
    "keys",
    [
        ["request_cookies"],
        ["Cookies"],
        ["headers"],
        ["plan.label"],
        ["a b"],
        [""],
        [f"k{i}" for i in range(21)],
        "plan",
    ],
)
def test_an_allowlist_naming_kratos_request_data_or_no_template_name_is_refused(keys):
    with pytest.raises(ConfigurationError, match="EMAIL_FLOWS"):
        flows(keys)
