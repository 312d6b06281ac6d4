"""Every request the signup path sends is a valid Mailchimp request: checked by Prism against
the Marketing API specification (../shared/reference/mailchimp).

The signup function and the worker run against the sandbox through a recording proxy, so
every branch really happens (a new member's create, "Member Exists" and the read after it, tags
for an existing one, unsubscribed to pending, the upsert where updating is allowed, the worker's
skip_merge_validation); each recorded request is then sent to a Prism mock server
built from the spec, which answers 422 to a request that breaks it.

Skipped when the specifications or Prism (``npm ci``) are absent.
"""

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from chimpbridge.models.signup import QueuedSignup, Signup
from sandbox.mailchimp import DEFAULT_LIST_ID
from tests.sandbox.test_sandbox_prism import start_prism, stop_prism
from tests.support.functions import LambdaContext, load_function

pytestmark = pytest.mark.xdist_group("signup")

SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "reference" / "mailchimp"
FORWARDED_HEADERS = ("Authorization", "Content-Type", "User-Agent")


class RecordingProxy:
    """Forwards every request to ``target`` and remembers it (method, path, query, headers, body)."""

    def __init__(self, target: str) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name: self.headers[name] for name in FORWARDED_HEADERS if self.headers.get(name)}
                outer.requests.append({"method": self.command, "path": self.path, "headers": headers, "body": body})
                answer = requests.request(self.command, target + self.path, headers=headers, data=body, timeout=10)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def prism_url(tmp_path_factory):
    if not (SPEC_DIR / "marketing.prism.json").is_file():
        pytest.skip(f"Mailchimp specifications not found at {SPEC_DIR}")
    process, url = start_prism(SPEC_DIR / "marketing.prism.json", tmp_path_factory.mktemp("prism") / "marketing.log")
    yield url
    stop_prism(process)


@pytest.fixture
def recorded(signup_api):
    proxy = RecordingProxy(signup_api.sandbox.url)
    signup_api.configure(MAILCHIMP_API_URL=f"{proxy.url}/3.0")
    yield proxy.requests
    proxy.close()


def exercise_every_branch(signup_api, new_email):
    signup_api.lists.add_list_merge_field(DEFAULT_LIST_ID, {"tag": "ADDRESS", "name": "Address", "type": "address"})
    # A new person with everything a JSON signup can carry
    signup_api.post_json(
        {
            "email": new_email(),
            "first_name": "Ann",
            "last_name": "Lee",
            "tags": ["blog"],
            "interests": ["9143cf3bd1"],
            "language": "fr",
            "marketing_permissions": [{"marketing_permission_id": "abc123", "enabled": True}],
        }
    )
    # An embedded form with an address
    signup_api.post_form({"EMAIL": new_email(), "FNAME": "Sam", "ADDRESS[addr1]": "1 Main St", "ADDRESS[city]": "X"})
    # A subscribed person asking for a tag (tags endpoint), an unsubscribed one coming back (PATCH)
    subscribed, unsubscribed = new_email(), new_email()
    signup_api.put_member(subscribed, "subscribed")
    signup_api.put_member(unsubscribed, "unsubscribed")
    signup_api.post_json({"email": subscribed, "tags": ["newsletter"]})
    signup_api.post_json({"email": unsubscribed})
    # A site that may update existing members (the upsert, PUT)
    signup_api.configure(SIGNUP_UPDATE_EXISTING="true")
    signup_api.post_json({"email": subscribed, "first_name": "Sue", "language": "de"})
    signup_api.configure(SIGNUP_UPDATE_EXISTING="false")
    # Single opt-in
    signup_api.configure(SIGNUP_DOUBLE_OPT_IN="false")
    signup_api.post_json({"email": new_email()})
    # The worker applying a queued signup (with skip_merge_validation)
    queued = QueuedSignup(
        signup=Signup(list_id=DEFAULT_LIST_ID, email=new_email(), tags=["blog"], merge_fields={"FNAME": "Q"}),
        queued_at=datetime.now(UTC),
        reason="mailchimp-503",
    )
    record = {"messageId": "m1", "receiptHandle": "r1", "body": queued.to_json(), "attributes": {}}
    load_function("signup_worker").lambda_handler({"Records": [record]}, LambdaContext())


def violations(prism_url, request):
    path = request["path"].removeprefix("/3.0")  # Prism serves the spec's paths without /3.0
    answer = requests.request(
        request["method"], prism_url + path, headers=request["headers"], data=request["body"] or None, timeout=30
    )
    if answer.status_code < 400:
        return []
    problem = answer.json()
    found = problem.get("validation", [])
    request_side = [item for item in found if item["location"][0] != "response"]
    if answer.status_code == 500 and found and not request_side:
        return []  # Prism's made-up answer failed its own response schema: not our request
    return [request["method"], path, answer.status_code, request_side or problem]


def test_every_request_of_the_signup_path_passes_prism_validation(signup_api, new_email, recorded, prism_url):
    # Given every branch of the signup path and the worker, run against the sandbox
    exercise_every_branch(signup_api, new_email)
    kinds = {(request["method"], request["path"].split("?")[0].rsplit("/", 1)[-1] == "tags") for request in recorded}
    assert {("POST", False), ("GET", False), ("PUT", False), ("PATCH", False), ("POST", True)} <= kinds
    # When each recorded request is sent to Prism
    found = [violations(prism_url, request) for request in recorded]
    # Then none breaks the Marketing API specification
    assert [item for item in found if item] == []
    creates = [request for request in recorded if request["method"] == "POST" and request["path"].endswith("/members")]
    assert any(json.loads(request["body"]).get("tags") for request in creates)


def test_the_check_catches_a_request_that_breaks_the_spec(prism_url):
    # A PUT without status_if_new is what Mailchimp refuses; the check must see it too.
    broken = {
        "method": "PUT",
        "path": f"/3.0/lists/{DEFAULT_LIST_ID}/members/0123456789abcdef0123456789abcdef",
        "headers": {"Authorization": "Basic dXNlcjprZXktdXMyMQ==", "Content-Type": "application/json"},
        "body": b'{"email_address": "ann@example.org"}',
    }
    assert violations(prism_url, broken) != []
