"""pytest plugin for the signup tests: the signup and worker functions wired to the per-test
sandbox (official SDK over HTTP) and moto (secrets, the signup queue), plus small helpers to
post signups and look at the audience.

``signup_api`` is what most tests use::

    def test_x(signup_api, new_email):
        response = signup_api.post_json({"email": new_email()})
        assert signup_api.member(...)["status"] == "pending"
"""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
import requests
from mailchimp_marketing.api_client import ApiClientError

from chimpbridge.logic.signup_apply import subscriber_hash
from sandbox.mailchimp import DEFAULT_LIST_ID, MARKETING_API_KEY
from sandbox.mailchimp.client import SandboxClient
from tests.support.aws import REGION, forget_caches
from tests.support.functions import ROOT, LambdaContext, event, load_function
from tests.support.logs import log_buffer
from tests.support.scripted_http import Answer as ScriptedAnswer

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
FORM_TOKEN_KEY = "test-signup-form-token-key-0123456789"
FIELD_MAP = {
    "merge_fields": {"company": "COMPANY"},
    "tags": {"2004321": "newsletter", "blog": "blog"},
    "interests": {"21469:1": "9143cf3bd1", "21469:2": "a5b2c3d4e5"},
}
# Mailchimp's answer to an interest id the audience does not have: our configuration, not the person.
INVALID_INTEREST = ScriptedAnswer(
    400,
    {
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": "Invalid Resource",
        "status": 400,
        "detail": "Invalid interest ID: 'zzzzzzzzzz'.",
        "instance": "a1b2c3d4-0000-4000-8000-000000000000",
    },
    content_type="application/problem+json",
)


def audience_member(sandbox: SandboxClient, email: str) -> dict[str, Any] | None:
    """The default audience's member at ``email`` as the Marketing API answers over HTTP, or
    None where there is none (for tests of a running stack, with no SignupApi at hand)."""
    response = requests.get(
        f"{sandbox.marketing_url}/lists/{DEFAULT_LIST_ID}/members/{subscriber_hash(email)}",
        auth=("user", sandbox.marketing_api_key),
        timeout=10,
    )
    return dict(response.json()) if response.status_code == 200 else None


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any] | None

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")


@dataclass
class SignupApi:
    """The signup function (as Lambda loads it) and what it talks to."""

    sandbox: SandboxClient
    queue_url: str
    sqs: Any
    monkeypatch: pytest.MonkeyPatch
    env: dict[str, str] = field(default_factory=dict)
    _function: Any = None
    lists: Any = field(init=False)

    def __post_init__(self) -> None:
        self.lists = self.sandbox.marketing_sdk().lists

    def configure(self, **variables: str) -> None:
        """Change function environment variables (the function is loaded afresh)."""
        for name, value in variables.items():
            self.monkeypatch.setenv(name, value)
            self.env[name] = value
        forget_caches()
        self._function = None

    @property
    def function(self) -> Any:
        if self._function is None:
            self._function = load_function("signup")
        return self._function

    def call(self, proxy_event: dict[str, Any]) -> Answer:
        result = self.function.lambda_handler(proxy_event, LambdaContext())
        headers = {name: values[-1] for name, values in result.get("multiValueHeaders", {}).items()}
        headers.update(result.get("headers") or {})
        text = result.get("body")
        body = json.loads(text) if text and headers.get("Content-Type", "").endswith("json") else None
        return Answer(result["statusCode"], headers, body)

    def post(self, body: str, content_type: str, headers: dict[str, str] | None = None) -> Answer:
        return self.call(api_event("POST", "/subscribe", body, {"Content-Type": content_type, **(headers or {})}))

    def post_json(self, document: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
        return self.post(json.dumps(document), "application/json", headers)

    def post_form(
        self, fields: dict[str, str] | list[tuple[str, str]], headers: dict[str, str] | None = None
    ) -> Answer:
        return self.post(urlencode(fields), "application/x-www-form-urlencoded", headers)

    def member(self, email: str) -> dict[str, Any] | None:
        try:
            return dict(self.lists.get_list_member(DEFAULT_LIST_ID, subscriber_hash(email)))
        except ApiClientError as error:
            if error.status_code == 404:
                return None
            raise

    def member_count(self) -> int:
        return int(self.lists.get_list_members_info(DEFAULT_LIST_ID, count=1)["total_items"])

    def put_member(self, email: str, status: str, **fields: Any) -> None:
        body = {"email_address": email, "status_if_new": status, "status": status, **fields}
        self.lists.set_list_member(DEFAULT_LIST_ID, subscriber_hash(email), body)

    def queued(self) -> list[dict[str, Any]]:
        """Every message on the signup queue (received, then left to reappear)."""
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return [json.loads(message["Body"]) for message in messages.get("Messages", [])]


def api_event(method: str, path: str, body: str | None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway proxy event for ``method path``, from the signup function's sample event."""
    proxy = event("signup/subscribe-json.json")
    merged = {"User-Agent": BROWSER, "Origin": "https://example.org", **(headers or {})}
    if "Content-Type" not in merged or body is None:
        merged.pop("Content-Type", None)
    proxy.update(path=path, resource=path, httpMethod=method, body=body, isBase64Encoded=False, headers=merged)
    proxy["multiValueHeaders"] = {name: [value] for name, value in merged.items()}
    proxy["requestContext"]["identity"]["userAgent"] = merged.get("User-Agent")
    proxy["requestContext"]["requestId"] = str(uuid.uuid4())
    return proxy


@pytest.fixture
def new_email(request: pytest.FixtureRequest) -> Callable[..., str]:
    """new_email() -> "person-<test>-<random>@example.org"; new_email("too-many") keeps the prefix."""
    test = request.node.name.replace("_", "-").replace("[", "-").replace("]", "")[:40]

    def make(prefix: str = "person", domain: str = "example.org") -> str:
        return f"{prefix}-{test}-{uuid.uuid4().hex[:8]}@{domain}"

    return make


@pytest.fixture
def logged() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """logged() -> the JSON lines our logger wrote during the test (its own formatter, masked)."""
    with log_buffer() as buffer:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


@pytest.fixture
def signup_queue(aws_env: str) -> tuple[Any, str]:
    sqs = boto3.client("sqs", endpoint_url=aws_env, region_name=REGION)
    return sqs, str(sqs.create_queue(QueueName=f"signups-{uuid.uuid4().hex[:12]}")["QueueUrl"])


@pytest.fixture
def signup_api(
    sandbox: SandboxClient,
    make_secret: Callable[[str], str],
    signup_queue: tuple[Any, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SignupApi]:
    """The signup function's environment as the template sets it, pointed at sandbox and moto."""
    sqs, queue_url = signup_queue
    variables = {
        "MAILCHIMP_SECRET_ARN": make_secret(json.dumps({"api_key": MARKETING_API_KEY})),
        "MAILCHIMP_API_URL": sandbox.marketing_url,
        "MAILCHIMP_LIST_ID": DEFAULT_LIST_ID,
        "SIGNUP_QUEUE_URL": queue_url,
        "SIGNUP_FORM_SECRET_ARN": make_secret(json.dumps({"form_token_key": FORM_TOKEN_KEY})),
        "SIGNUP_FIELD_MAP": json.dumps(FIELD_MAP),
        "ALLOWED_ORIGINS": "https://example.org,https://shop.example.org",
        # Short retries keep the fault tests quick; the template's values are longer.
        "MAILCHIMP_MAX_ATTEMPTS": "2",
        "MAILCHIMP_RETRY_BUDGET_SECONDS": "0.5",
    }
    for name in ("SIGNUP_SUCCESS_REDIRECT_URL", "SIGNUP_ERROR_REDIRECT_URL", "SIGNUP_HOSTED_FORM_URL"):
        monkeypatch.delenv(name, raising=False)
    api = SignupApi(sandbox=sandbox, queue_url=queue_url, sqs=sqs, monkeypatch=monkeypatch)
    api.configure(**variables)
    yield api
    forget_caches()


# ---------------------------------------------------------------- the local stack (tests/e2e)
# What the example pages name, and the site operator edits: the API (`make dev`'s address, in
# the forms' action) and the audience's hosted signup form (empty in the done page).
PAGE_API = "http://127.0.0.1:3000"
PAGE_HOSTED_FORM = '<meta name="chimpbridge-hosted-form" content="">'
HOSTED_FORM_URL = "https://eepurl.com/chimpbridge"


@dataclass
class SignupPages:
    """examples/ served over HTTP from its own origin, as a website with a signup form whose
    operator set the pages up for this stack: its API address and its hosted form."""

    url: str
    api_url: str = PAGE_API
    hosted_form_url: str = ""

    @property
    def origin(self) -> str:
        return self.url

    @property
    def done_page(self) -> str:
        return f"{self.url}/signup-form-done.html"

    def configure(self, text: str) -> str:
        text = text.replace(PAGE_API, self.api_url)
        return text.replace(PAGE_HOSTED_FORM, f'<meta name="chimpbridge-hosted-form" content="{self.hosted_form_url}">')


@pytest.fixture(scope="session")
def signup_pages() -> Iterator[SignupPages]:
    pages = SignupPages("")
    handler = functools.partial(ExamplePages, pages, directory=str(ROOT / "examples"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pages.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield pages
    server.shutdown()
    server.server_close()


class ExamplePages(SimpleHTTPRequestHandler):
    """The files of examples/, with the pages' settings filled in as their operator would."""

    def __init__(self, pages: SignupPages, *args: Any, **kwargs: Any) -> None:
        self.pages = pages
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        path = self.translate_path(self.path)
        if not path.endswith(".html"):
            super().do_GET()
            return
        try:
            with open(path, encoding="utf-8") as page:
                body = self.pages.configure(page.read()).encode()
        except OSError:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def signup_stack(local_stack_factory: Any, signup_pages: SignupPages) -> Any:
    """The repository's template on the local stack, configured as a site with a signup form:
    its origin allowed, redirects to its done page, a field map and a hosted form URL; the
    example pages are set up for it."""
    stack = local_stack_factory(
        parameters={
            "AllowedOrigins": signup_pages.origin,
            "SignupFieldMap": json.dumps(
                {"tags": {"2004321": "newsletter", "blog": "blog"}, "interests": ["9143cf3bd1"]}
            ),
            "SignupSuccessRedirectUrl": signup_pages.done_page,
            "SignupErrorRedirectUrl": signup_pages.done_page,
            "SignupHostedFormUrl": HOSTED_FORM_URL,
        }
    )
    signup_pages.api_url = stack.api_url
    signup_pages.hosted_form_url = HOSTED_FORM_URL
    return stack
