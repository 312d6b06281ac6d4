import pytest

from chimpbridge import settings
from chimpbridge.errors import ConfigurationError


@pytest.fixture(autouse=True)
def _fresh_settings():
    settings.clear()
    yield
    settings.clear()


def test_missing_variable_is_named(monkeypatch):
    # Given no Mailchimp secret configured
    monkeypatch.delenv("MAILCHIMP_SECRET_ARN", raising=False)
    # When the settings are loaded
    with pytest.raises(ConfigurationError) as raised:
        settings.load(settings.MailchimpSettings)
    # Then the message names the variable
    assert "MAILCHIMP_SECRET_ARN is not set" in str(raised.value)


def test_invalid_variable_is_named_without_its_value(monkeypatch):
    # Given a read timeout that is not a number
    monkeypatch.setenv("MAILCHIMP_READ_TIMEOUT_SECONDS", "soon-ish")
    # When the HTTP settings are loaded
    with pytest.raises(ConfigurationError) as raised:
        settings.load(settings.HttpSettings)
    # Then the variable is named and its value is not echoed
    assert "MAILCHIMP_READ_TIMEOUT_SECONDS is invalid" in str(raised.value)
    assert "soon-ish" not in str(raised.value)


def test_out_of_range_connection_cap_is_rejected(monkeypatch):
    # Given more connections than Mailchimp allows per account
    monkeypatch.setenv("MAILCHIMP_MAX_CONNECTIONS", "11")
    # Then loading fails naming the variable
    with pytest.raises(ConfigurationError, match="MAILCHIMP_MAX_CONNECTIONS"):
        settings.load(settings.HttpSettings)


def test_settings_are_parsed_once(monkeypatch):
    # Given settings loaded once
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://a.example, https://b.example")
    first = settings.load(settings.ApiSettings)
    # When the environment changes afterwards
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://c.example")
    # Then the cached value is kept for the container's life
    assert settings.load(settings.ApiSettings) is first
    assert first.allowed_origins == ["https://a.example", "https://b.example"]


def test_empty_variable_counts_as_unset(monkeypatch):
    # Given an override that is present but empty (as SAM renders an empty parameter)
    monkeypatch.setenv("MAILCHIMP_API_URL", "")
    monkeypatch.setenv("MAILCHIMP_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x")
    # Then it is treated as not configured
    assert settings.load(settings.MailchimpSettings).api_url is None


@pytest.mark.parametrize(("raw", "expected"), [("false", True), ("No", True), ("1", False), ("on", False)])
def test_booleans_read_as_people_write_them(monkeypatch, raw, expected):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", raw)
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    assert settings.load(settings.TracingSettings).enabled is expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIGNUP_FIELD_MAP", '{"tagz": []}'),
        ("SIGNUP_FIELD_MAP", "{not json"),
        ("SIGNUP_DOUBLE_OPT_IN", "maybe"),
        ("SIGNUP_SUCCESS_REDIRECT_URL", "javascript:alert(1)"),
        ("SIGNUP_MAX_BODY_BYTES", "10"),
    ],
)
def test_bad_signup_settings_name_the_variable(monkeypatch, name, value):
    monkeypatch.setenv("MAILCHIMP_LIST_ID", "a1b2c3d4e5")
    monkeypatch.setenv("SIGNUP_QUEUE_URL", "https://queue")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=f"{name} is invalid"):
        settings.load(settings.SignupSettings)


def test_every_problem_is_listed_at_once(monkeypatch):
    monkeypatch.delenv("MAILCHIMP_LIST_ID", raising=False)
    monkeypatch.delenv("SIGNUP_QUEUE_URL", raising=False)
    monkeypatch.setenv("SIGNUP_MAX_BODY_BYTES", "lots")
    with pytest.raises(ConfigurationError) as raised:
        settings.load(settings.SignupSettings)
    message = str(raised.value)
    assert message.startswith("SignupSettings: ")
    for part in ("MAILCHIMP_LIST_ID is not set", "SIGNUP_QUEUE_URL is not set", "SIGNUP_MAX_BODY_BYTES is invalid"):
        assert part in message
    assert "lots" not in message


def test_secret_settings_stay_out_of_reprs(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI")
    assert "wJalrXUtnFEMI" not in repr(settings.load(settings.AwsSettings))
