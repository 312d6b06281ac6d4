"""The execution role's keys for the Secrets Manager call the layer signs itself: from the
environment, or (SnapStart) from Lambda's container credentials endpoint, without boto3."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from chimpbridge import credentials, secrets, settings
from chimpbridge.errors import UpstreamError
from chimpbridge.secrets import MandrillCredentials, get_secret
from tests.support.scripted_http import Answer, ScriptedServer

TOKEN = "container-authorization-token"
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")


def served(key_id: str, *, expires_in: timedelta = timedelta(hours=6)) -> Answer:
    expiration = (datetime.now(UTC) + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Answer(
        body={
            "AccessKeyId": key_id,
            "SecretAccessKey": "secret-" + key_id,
            "Token": "token-" + key_id,
            "Expiration": expiration,
        }
    )


@pytest.fixture
def container_env(monkeypatch):
    """A SnapStart function's environment: no keys, an endpoint that serves them."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", TOKEN)

    def point_at(url: str) -> settings.AwsSettings:
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url + "/2018-06-01/credentials")
        settings.clear()
        return settings.load(settings.AwsSettings)

    settings.clear()
    secrets.reset()
    yield point_at
    settings.clear()
    secrets.reset()


def test_keys_in_the_environment_come_first():
    # Given keys in the environment and an endpoint as well
    aws = settings.parse(
        settings.AwsSettings,
        {"AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "s", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://x"},
    )
    # Then the environment's keys are used, as the SDKs' credential chain does
    assert credentials.current(aws) == credentials.Credentials("AKENV", "s", None)


def test_without_keys_or_endpoint_there_are_none():
    assert credentials.current(settings.parse(settings.AwsSettings, {})) is None


def test_keys_come_from_the_endpoint_with_its_token(container_env):
    with ScriptedServer(served("AKSERVED")) as endpoint:
        # Given a SnapStart environment
        aws = container_env(endpoint.url)
        # When keys are needed
        keys = credentials.current(aws)
        # Then the endpoint served them, asked with the authorization token
        assert (keys.access_key_id, keys.secret_access_key, keys.session_token) == (
            "AKSERVED",
            "secret-AKSERVED",
            "token-AKSERVED",
        )
        assert endpoint.requests[0].path == "/2018-06-01/credentials"
        assert endpoint.requests[0].headers["Authorization"] == TOKEN


def test_served_keys_are_kept_until_shortly_before_they_expire(container_env):
    with ScriptedServer(served("AKFIRST"), served("AKSECOND")) as endpoint:
        aws = container_env(endpoint.url)
        # Given keys read once
        assert credentials.current(aws).access_key_id == "AKFIRST"
        # Then later calls reuse them without asking again
        assert credentials.current(aws).access_key_id == "AKFIRST"
        assert len(endpoint.requests) == 1


def test_keys_about_to_expire_are_read_again(container_env):
    with ScriptedServer(served("AKOLD", expires_in=timedelta(minutes=2)), served("AKNEW")) as endpoint:
        aws = container_env(endpoint.url)
        # Given keys that expire within the refresh margin
        assert credentials.current(aws).access_key_id == "AKOLD"
        # Then the next call reads fresh ones
        assert credentials.current(aws).access_key_id == "AKNEW"


def test_an_endpoint_without_keys_is_a_transient_upstream_error(container_env):
    with ScriptedServer(Answer(status=500, body={"message": "unavailable"})) as endpoint:
        aws = container_env(endpoint.url)
        with pytest.raises(UpstreamError) as raised:
            credentials.current(aws)
        assert raised.value.transient


def test_a_secret_is_signed_with_the_served_keys_without_boto3(container_env, monkeypatch):
    with (
        ScriptedServer(served("AKSERVED")) as endpoint,
        ScriptedServer(Answer(body={"SecretString": json.dumps({"api_key": "mandrill-key"})})) as secrets_manager,
    ):
        # Given a SnapStart environment and a Secrets Manager endpoint
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_manager.url)
        container_env(endpoint.url)
        monkeypatch.setattr(secrets, "_fetch_with_boto3", lambda arn: pytest.fail("boto3 was used"))
        # When a secret is read
        value = get_secret("arn:aws:secretsmanager:us-east-1:123456789012:secret:m", MandrillCredentials)
        # Then it was signed with the served keys and session token
        assert value.api_key == "mandrill-key"
        signed = secrets_manager.requests[0].headers
        assert "Credential=AKSERVED/" in signed["authorization"]
        assert signed["x-amz-security-token"] == "token-AKSERVED"
