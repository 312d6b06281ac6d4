"""EMAIL_FLOWS and the hook/sender settings: typed, validated, naming the variable."""

import pytest

from chimpbridge import settings
from chimpbridge.errors import ConfigurationError


@pytest.fixture(autouse=True)
def fresh_settings():
    settings.clear()
    yield
    settings.clear()


def test_the_default_flow_sends_the_welcome_template(monkeypatch):
    monkeypatch.delenv("EMAIL_FLOWS", raising=False)

    flows = settings.load(settings.EmailFlowSettings).flows

    assert list(flows) == ["registration"]
    assert flows["registration"].template == "welcome"


def test_flows_map_hooks_to_bundle_or_mandrill_templates(monkeypatch):
    monkeypatch.setenv(
        "EMAIL_FLOWS",
        '{"registration": {"template": "welcome", "subject": "Hi"}, "recovery": {"mandrill_template": "reset-done"}}',
    )

    flows = settings.load(settings.EmailFlowSettings).flows

    assert flows["recovery"].mandrill_template == "reset-done"


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        '{"registration": {"template": "welcome"}}',
        '{"registration": {"template": "welcome", "mandrill_template": "x", "subject": "s"}}',
        '{"Bad Name": {"mandrill_template": "x"}}',
        '{"registration": {"template": "../etc/passwd", "subject": "s"}}',
        "{}",
    ],
)
def test_a_bad_flow_mapping_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("EMAIL_FLOWS", value)

    with pytest.raises(ConfigurationError, match="EMAIL_FLOWS"):
        settings.load(settings.EmailFlowSettings)


def test_a_newsletter_trait_needs_the_signup_queue_and_list(monkeypatch):
    for name, value in {
        "HOOK_KEYS_SECRET_ARN": "arn",
        "EMAIL_QUEUE_URL": "url",
        "NEWSLETTER_OPT_IN_TRAIT": "newsletter",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SIGNUP_QUEUE_URL", raising=False)

    with pytest.raises(ConfigurationError, match="NEWSLETTER_OPT_IN_TRAIT"):
        settings.load(settings.HookSettings)
