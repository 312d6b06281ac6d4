"""The sandbox's login.mailchimp.com side (OAuth 2 authorization-code flow) over real HTTP:
authorize page and decision, token endpoint, metadata, revocation; tokens on the Marketing API
through the official SDK."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from mailchimp_marketing.api_client import ApiClientError

from sandbox.mailchimp.client import SandboxClient
from sandbox.mailchimp.constants import OAUTH_ACCOUNT_EMAIL, OAUTH_SERVER_PREFIX

REDIRECT_URI = "https://app.example.org/connect/mailchimp/callback"


@pytest.fixture
def app(sandbox: SandboxClient) -> dict[str, str]:
    client_id = f"client-{uuid.uuid4().hex[:8]}"
    secret = uuid.uuid4().hex
    sandbox.register_oauth_app(client_id, secret, REDIRECT_URI, name="Test integration")
    return {"client_id": client_id, "client_secret": secret, "redirect_uri": REDIRECT_URI}


def authorize(sandbox: SandboxClient, app: dict[str, str], decision: str, state: str = "s1") -> requests.Response:
    form = {"client_id": app["client_id"], "redirect_uri": app["redirect_uri"], "state": state, "decision": decision}
    return requests.post(f"{sandbox.url}/oauth2/authorize", data=form, allow_redirects=False, timeout=10)


def code_from(response: requests.Response) -> str:
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


def exchange(sandbox: SandboxClient, app: dict[str, str], code: str, **overrides: str) -> requests.Response:
    form = {"grant_type": "authorization_code", "code": code, **app, **overrides}
    return requests.post(f"{sandbox.url}/oauth2/token", data=form, timeout=10)


def issued_token(sandbox: SandboxClient, app: dict[str, str]) -> str:
    return str(exchange(sandbox, app, code_from(authorize(sandbox, app, "allow"))).json()["access_token"])


def metadata(sandbox: SandboxClient, token: str, scheme: str = "OAuth") -> requests.Response:
    return requests.get(f"{sandbox.url}/oauth2/metadata", headers={"Authorization": f"{scheme} {token}"}, timeout=10)


def test_the_authorize_page_offers_allow_and_deny_for_a_registered_app(
    sandbox: SandboxClient, app: dict[str, str]
) -> None:
    # Given
    query = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": REDIRECT_URI, "state": "xyz"}

    # When
    page = requests.get(f"{sandbox.url}/oauth2/authorize", params=query, timeout=10)

    # Then
    assert page.status_code == 200
    assert 'data-testid="oauth-allow"' in page.text and 'data-testid="oauth-deny"' in page.text
    assert 'name="state" value="xyz"' in page.text


@pytest.mark.parametrize(
    ("client_id", "redirect_uri"),
    [("unknown-client", REDIRECT_URI), (None, "https://evil.example.net/callback")],
    ids=["unknown client id", "unregistered redirect URI"],
)
def test_the_authorize_page_refuses_without_redirecting(
    sandbox: SandboxClient, app: dict[str, str], client_id: str | None, redirect_uri: str
) -> None:
    # Given
    query = {"response_type": "code", "client_id": client_id or app["client_id"], "redirect_uri": redirect_uri}

    # When
    page = requests.get(f"{sandbox.url}/oauth2/authorize", params=query, allow_redirects=False, timeout=10)

    # Then
    assert page.status_code == 400
    assert "Location" not in page.headers
    assert 'data-testid="oauth-error"' in page.text


def test_allow_redirects_with_a_code_and_the_state(sandbox: SandboxClient, app: dict[str, str]) -> None:
    # When
    answer = authorize(sandbox, app, "allow", state="state-123")

    # Then
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == ["state-123"] and len(query["code"][0]) >= 16


def test_deny_redirects_with_access_denied_and_no_code(sandbox: SandboxClient, app: dict[str, str]) -> None:
    # When
    answer = authorize(sandbox, app, "deny", state="state-9")

    # Then
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query == {"error": ["access_denied"], "state": ["state-9"]}


def test_a_code_is_exchanged_for_a_token_once(sandbox: SandboxClient, app: dict[str, str]) -> None:
    # Given
    code = code_from(authorize(sandbox, app, "allow"))

    # When
    first = exchange(sandbox, app, code)
    second = exchange(sandbox, app, code)

    # Then
    assert first.status_code == 200
    assert first.json()["access_token"] and first.json()["expires_in"] == 0
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"


def test_the_token_endpoint_checks_the_client_secret(sandbox: SandboxClient, app: dict[str, str]) -> None:
    # Given
    code = code_from(authorize(sandbox, app, "allow"))

    # When
    answer = exchange(sandbox, app, code, client_secret="wrong")

    # Then
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


def test_a_code_expires(sandbox: SandboxClient, app: dict[str, str]) -> None:
    # Given
    sandbox.oauth_settings(code_ttl_seconds=0.05)
    code = code_from(authorize(sandbox, app, "allow"))
    time.sleep(0.1)

    # When
    answer = exchange(sandbox, app, code)

    # Then
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_the_redirect_uri_of_the_exchange_must_match(sandbox: SandboxClient, app: dict[str, str]) -> None:
    # Given
    code = code_from(authorize(sandbox, app, "allow"))

    # When
    answer = exchange(sandbox, app, code, redirect_uri="https://app.example.org/other")

    # Then
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_metadata_names_the_data_center_and_login(sandbox: SandboxClient, app: dict[str, str]) -> None:
    # Given
    token = issued_token(sandbox, app)

    # When
    answer = metadata(sandbox, token)

    # Then
    assert answer.status_code == 200
    body = answer.json()
    assert body["dc"] == OAUTH_SERVER_PREFIX
    assert body["login"]["login_email"] == OAUTH_ACCOUNT_EMAIL
    assert body["api_endpoint"] == sandbox.url


def test_metadata_answers_200_with_invalid_token_for_a_bad_token(sandbox: SandboxClient) -> None:
    # When
    answer = metadata(sandbox, "not-a-token")

    # Then
    assert answer.status_code == 200
    assert answer.json() == {"error": "invalid_token"}


@pytest.mark.parametrize("scheme", ["OAuth", "Bearer"])
def test_an_issued_token_works_on_the_marketing_api(sandbox: SandboxClient, app: dict[str, str], scheme: str) -> None:
    # Given
    token = issued_token(sandbox, app)

    # When
    answer = requests.get(f"{sandbox.marketing_url}/ping", headers={"Authorization": f"{scheme} {token}"}, timeout=10)

    # Then
    assert answer.status_code == 200


def test_the_official_sdk_works_with_an_issued_token(sandbox: SandboxClient, app: dict[str, str]) -> None:
    # Given
    client = sandbox.oauth_marketing_sdk(issued_token(sandbox, app))

    # When
    answer = client.ping.get()

    # Then
    assert answer == {"health_status": "Everything's Chimpy!"}


def test_a_revoked_token_is_refused_by_the_marketing_api_and_metadata(
    sandbox: SandboxClient, app: dict[str, str]
) -> None:
    # Given
    token = issued_token(sandbox, app)

    # When
    sandbox.revoke_oauth(access_token=token)

    # Then
    with pytest.raises(ApiClientError) as refused:
        sandbox.oauth_marketing_sdk(token).ping.get()
    assert refused.value.status_code == 401
    assert metadata(sandbox, token).json() == {"error": "invalid_token"}
    assert [issued["revoked"] for issued in sandbox.oauth_tokens() if issued["access_token"] == token] == [True]


def test_revoking_an_app_revokes_each_of_its_tokens(sandbox: SandboxClient, app: dict[str, str]) -> None:
    # Given
    tokens = [issued_token(sandbox, app), issued_token(sandbox, app)]

    # When
    answer = sandbox.revoke_oauth(client_id=app["client_id"])

    # Then
    assert answer == {"revoked": 2}
    assert all(metadata(sandbox, token).json() == {"error": "invalid_token"} for token in tokens)
