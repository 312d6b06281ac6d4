"""The connect function (functions/connect) as Lambda loads it, with the Mailchimp sandbox's
login side over HTTP and AWS on moto: an operator's link, the browser's trip to the authorize
page (requests plays the browser), the callback, status and disconnect."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests

from chimpbridge.logic import connect_tokens
from sandbox.mailchimp import DEFAULT_LIST_ID, MARKETING_API_KEY
from sandbox.mailchimp.client import SandboxClient
from tests.support.aws import REGION, forget_caches
from tests.support.functions import LambdaContext, event, load_function

PUBLIC_URL = "https://api.example.org/chimpbridge"
SIGNING_KEY = "test-connect-signing-key-0123456789"


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def result(self) -> str | None:
        """The ``data-result`` of the result page (connected, denied, forged, ...)."""
        marker = 'data-result="'
        return self.body.split(marker, 1)[1].split('"', 1)[0] if marker in self.body else None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Browser:
    """What one browser holds: the connect cookie."""

    cookie: str | None = None


@dataclass
class ConnectWorld:
    sandbox: SandboxClient
    aws_url: str
    monkeypatch: pytest.MonkeyPatch
    mailchimp_secret_arn: str = ""
    oauth_secret_arn: str = ""
    client_id: str = field(default_factory=lambda: f"client-{uuid.uuid4().hex[:8]}")
    client_secret: str = field(default_factory=lambda: uuid.uuid4().hex)
    public_url: str = PUBLIC_URL
    _function: Any = None

    def __post_init__(self) -> None:
        self.secrets = boto3.client("secretsmanager", endpoint_url=self.aws_url, region_name=REGION)
        dynamodb = boto3.client("dynamodb", endpoint_url=self.aws_url, region_name=REGION)
        table = f"state-{uuid.uuid4().hex[:12]}"
        dynamodb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        self.mailchimp_secret_arn = self._secret({"api_key": MARKETING_API_KEY})
        self.oauth_secret_arn = self._secret(
            {"client_id": self.client_id, "client_secret": self.client_secret, "signing_key": SIGNING_KEY}
        )
        self.serve_at(self.public_url)
        for name, value in {
            "MAILCHIMP_SECRET_ARN": self.mailchimp_secret_arn,
            "MAILCHIMP_OAUTH_SECRET_ARN": self.oauth_secret_arn,
            "MAILCHIMP_API_URL": self.sandbox.marketing_url,
            "MAILCHIMP_LOGIN_URL": self.sandbox.url,
            "STATE_TABLE": table,
            "MAILCHIMP_WEBHOOK_AUDIENCES": DEFAULT_LIST_ID,
            "MAILCHIMP_MAX_ATTEMPTS": "2",
            "MAILCHIMP_RETRY_BUDGET_SECONDS": "0.5",
        }.items():
            self.monkeypatch.setenv(name, value)
        forget_caches()

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url}/connect/mailchimp/callback"

    def serve_at(self, public_url: str) -> None:
        """The API's public URL (API_PUBLIC_URL), and the app's redirect URI in Mailchimp with it."""
        self.public_url = public_url
        self.monkeypatch.setenv("API_PUBLIC_URL", public_url)
        self.sandbox.register_oauth_app(self.client_id, self.client_secret, self.redirect_uri)
        forget_caches()

    def _secret(self, value: dict[str, Any]) -> str:
        return str(self.secrets.create_secret(Name=f"test/{uuid.uuid4()}", SecretString=json.dumps(value))["ARN"])

    @property
    def function(self) -> Any:
        if self._function is None:
            self._function = load_function("connect")
        return self._function

    # -- AWS -------------------------------------------------------------------------------
    def mailchimp_secret(self) -> dict[str, Any]:
        return dict(json.loads(self.secrets.get_secret_value(SecretId=self.mailchimp_secret_arn)["SecretString"]))

    def secret_versions(self) -> int:
        listed = self.secrets.list_secret_version_ids(SecretId=self.mailchimp_secret_arn)
        return len(listed["Versions"])

    # -- HTTP through the handler ----------------------------------------------------------
    def call(self, name: str, query: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Page:
        proxy = event(f"connect/{name}.json")
        proxy["queryStringParameters"] = query
        proxy["multiValueQueryStringParameters"] = {k: [v] for k, v in (query or {}).items()} or None
        proxy["headers"] = {"Host": "api.example.org", **(headers or {})}
        proxy["multiValueHeaders"] = {k: [v] for k, v in proxy["headers"].items()}
        proxy["requestContext"]["requestId"] = str(uuid.uuid4())
        result = self.function.lambda_handler(proxy, LambdaContext(timeout_seconds=29))
        merged = {name: values[-1] for name, values in (result.get("multiValueHeaders") or {}).items()}
        merged.update(result.get("headers") or {})
        return Page(result["statusCode"], merged, result.get("body") or "")

    def link(self, ttl: int = 900, key: str = SIGNING_KEY) -> str:
        return connect_tokens.issue(key, "link", ttl)

    def operator_token(self, purpose: str) -> str:
        return connect_tokens.issue(SIGNING_KEY, purpose, 120)

    def start(self, browser: Browser, link: str | None = None) -> Page:
        page = self.call("start", {"link": link or self.link()})
        if "Set-Cookie" in page.headers:
            browser.cookie = page.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
        return page

    def consent(self, authorize_url: str, decision: str = "allow") -> dict[str, str]:
        """The browser on Mailchimp's authorize page, clicking Allow or Deny; returns the
        callback's query Mailchimp redirects to."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        form = {"client_id": query["client_id"], "redirect_uri": query["redirect_uri"], "state": query["state"]}
        answer = requests.post(
            f"{self.sandbox.url}/oauth2/authorize",
            data={**form, "decision": decision},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 302, answer.text
        location = urlsplit(answer.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == self.redirect_uri
        return {k: v[0] for k, v in parse_qs(location.query).items()}

    def callback(self, browser: Browser, query: dict[str, str]) -> Page:
        headers = {"Cookie": f"chimpbridge_connect={browser.cookie}"} if browser.cookie else {}
        return self.call("callback", query, headers)

    def connect(self, browser: Browser | None = None) -> Page:
        """The whole flow, as an operator clicking Allow."""
        browser = browser or Browser()
        started = self.start(browser)
        return self.callback(browser, self.consent(started.headers["Location"]))

    def status(self, token: str | None = None) -> Page:
        return self.call("status", None, {"Authorization": f"Bearer {token or self.operator_token('status')}"})

    def disconnect(self, token: str | None = None) -> Page:
        return self.call("disconnect", None, {"Authorization": f"Bearer {token or self.operator_token('disconnect')}"})
