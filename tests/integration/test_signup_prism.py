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
from datetime import UTC, datetime

import pytest

from chimpbridge.models.signup import QueuedSignup, Signup
from sandbox.mailchimp import DEFAULT_LIST_ID
from tests.support.functions import LambdaContext, load_function
from tests.support.prism import RecordingProxy, violations

pytestmark = pytest.mark.xdist_group("signup")


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
