import json
import socket
import time
from types import SimpleNamespace

import boto3
import pytest

from chimpbridge.deadline import invocation_deadline
from chimpbridge.errors import ConfigurationError, UpstreamError
from chimpbridge.secrets import HookKeys, MailchimpCredentials, MandrillCredentials, get_secret, secrets_manager_url
from chimpbridge.settings import AwsSettings, parse
from tests.support.aws import REGION, forget_caches


def put_value(endpoint, arn, value):
    boto3.client("secretsmanager", endpoint_url=endpoint, region_name=REGION).put_secret_value(
        SecretId=arn, SecretString=json.dumps(value)
    )


def test_reads_and_validates_a_json_secret(make_secret):
    # Given a Mailchimp secret with a key for data center us21
    arn = make_secret(json.dumps({"api_key": "abc123-us21"}))
    # When it is read
    creds = get_secret(arn, MailchimpCredentials)
    # Then it parses, and the data center comes from the key suffix
    assert creds.api_key == "abc123-us21"
    assert creds.data_center == "us21"


def test_oauth_secret_gives_its_server_prefix(make_secret):
    arn = make_secret(json.dumps({"access_token": "tok", "server_prefix": "us7"}))
    assert get_secret(arn, MailchimpCredentials).data_center == "us7"


def test_cached_within_max_age(aws_env, make_secret):
    # Given a secret read once
    arn = make_secret(json.dumps({"api_key": "first"}))
    assert get_secret(arn, MandrillCredentials).api_key == "first"
    # When it changes in Secrets Manager
    put_value(aws_env, arn, {"api_key": "second"})
    # Then the cached value is served until it expires
    assert get_secret(arn, MandrillCredentials).api_key == "first"


def test_force_reads_again(aws_env, make_secret):
    arn = make_secret(json.dumps({"api_key": "first"}))
    get_secret(arn, MandrillCredentials)
    put_value(aws_env, arn, {"api_key": "second"})
    assert get_secret(arn, MandrillCredentials, force=True).api_key == "second"


def test_expired_value_is_read_again(aws_env, make_secret, monkeypatch):
    # Given a max age of zero seconds
    monkeypatch.setenv("SECRETS_MAX_AGE_SECONDS", "0")
    forget_caches()
    arn = make_secret(json.dumps({"api_key": "first"}))
    get_secret(arn, MandrillCredentials)
    put_value(aws_env, arn, {"api_key": "second"})
    # Then every read goes back to Secrets Manager
    assert get_secret(arn, MandrillCredentials).api_key == "second"


def test_malformed_secret_names_the_secret_and_field_not_the_value(make_secret):
    # Given a Mailchimp key without a data center suffix
    arn = make_secret(json.dumps({"api_key": "no-suffix-"}))
    with pytest.raises(ConfigurationError) as raised:
        get_secret(arn, MailchimpCredentials)
    assert arn in str(raised.value)
    assert "no-suffix" not in str(raised.value)


def test_missing_secret_is_a_configuration_error(aws_env):
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:does-not-exist"
    with pytest.raises(ConfigurationError, match="ResourceNotFoundException"):
        get_secret(arn, MandrillCredentials)


def test_hook_keys_accept_the_generated_initial_key(make_secret):
    # Given the secret as the template generates it at deploy
    arn = make_secret(json.dumps({"registration_hook_keys": [], "initial_key": "k" * 48}))
    # Then the generated key is accepted
    assert get_secret(arn, HookKeys).accepted_keys == ["k" * 48]


def test_hook_keys_without_any_key_are_rejected(make_secret):
    arn = make_secret(json.dumps({"registration_hook_keys": [""]}))
    with pytest.raises(ConfigurationError):
        get_secret(arn, HookKeys)


def test_without_credentials_in_env_falls_back_to_boto3(aws_env, make_secret, monkeypatch, tmp_path):
    # Given credentials only in a shared credentials file (not in the environment)
    arn = make_secret(json.dumps({"api_key": "via-boto3"}))
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    forget_caches()
    # Then the secret is still read, through boto3's credential chain
    assert get_secret(arn, MandrillCredentials).api_key == "via-boto3"


def test_no_read_is_started_without_time_to_finish_it(make_secret):
    # Given an invocation with less time left than the margin kept for answering
    arn = make_secret(json.dumps({"api_key": "k"}))
    context = SimpleNamespace(get_remaining_time_in_millis=lambda: 1_600)
    # When the secret is needed
    with invocation_deadline(context), pytest.raises(UpstreamError) as raised:
        get_secret(arn, MandrillCredentials)
    # Then it fails at once as a transient error (the request path queues its work instead)
    assert raised.value.transient


def test_a_slow_secrets_manager_is_cut_at_the_deadline(aws_env, monkeypatch):
    # Given a Secrets Manager endpoint that accepts connections but never answers
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{listener.getsockname()[1]}")
    forget_caches()
    context = SimpleNamespace(get_remaining_time_in_millis=lambda: 3_000)
    started = time.monotonic()
    try:
        with invocation_deadline(context), pytest.raises(UpstreamError):
            get_secret("arn:aws:secretsmanager:us-east-1:123456789012:secret:slow", MandrillCredentials)
    finally:
        listener.close()
    # Then it gave up before the invocation's end, leaving the margin to answer
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize(
    ("region", "url"),
    [
        ("eu-west-1", "https://secretsmanager.eu-west-1.amazonaws.com"),
        ("cn-north-1", "https://secretsmanager.cn-north-1.amazonaws.com.cn"),
    ],
)
def test_the_endpoint_follows_the_partition(region, url):
    assert secrets_manager_url(parse(AwsSettings, {"AWS_REGION": region})) == url
