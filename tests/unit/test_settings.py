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
