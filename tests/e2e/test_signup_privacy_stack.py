"""Privacy mode on the local stack: real HTTP answers for a new, a pending and a subscribed
address are the same bytes but for the request id, and the signup worker (driven by the queue)
then applies each by the rules for existing members."""

import time
import uuid

import pytest
import requests

from chimpbridge.logic.signup_apply import subscriber_hash
from sandbox.mailchimp import DEFAULT_LIST_ID
from sandbox.mailchimp.client import SandboxClient
from tests.support.signup import audience_member

pytestmark = [pytest.mark.xdist_group("signup-privacy-stack"), pytest.mark.slow]

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"}
PER_REQUEST = {"x-amzn-requestid", "date"}  # what differs between any two answers


def put_member(sandbox, email, status):
    body = {"email_address": email, "status_if_new": status, "status": status, "merge_fields": {"FNAME": "Ann"}}
    sandbox.marketing_sdk().lists.set_list_member(DEFAULT_LIST_ID, subscriber_hash(email), body)


def member(sandbox, email):
    return sandbox.marketing_sdk().lists.get_list_member(DEFAULT_LIST_ID, subscriber_hash(email))


def raw_answer(response):
    headers = sorted(
        (name.lower(), value) for name, value in response.headers.items() if name.lower() not in PER_REQUEST
    )
    return response.status_code, headers, response.content


@pytest.mark.parametrize(
    "post",
    [
        lambda url, email: requests.post(
            url, json={"email": email, "first_name": "Mallory"}, headers=BROWSER, timeout=30
        ),
        lambda url, email: requests.post(
            url,
            data={"EMAIL": email, "FNAME": "Mallory"},
            headers={**BROWSER, "Accept": "text/html"},
            allow_redirects=False,
            timeout=30,
        ),
    ],
    ids=["json", "browser-form"],
)
def test_privacy_mode_answers_new_pending_and_subscribed_addresses_with_the_same_bytes(local_stack_factory, post):
    # Given the stack in privacy mode (with a success page), a pending and a subscribed member
    stack = local_stack_factory(
        parameters={"SignupPrivacyMode": "true", "SignupSuccessRedirectUrl": "https://example.org/thanks"}
    )
    sandbox = SandboxClient(stack.sandbox_url)
    new, pending, subscribed = (f"{kind}-{uuid.uuid4().hex[:10]}@example.org" for kind in ("new", "pend", "sub"))
    put_member(sandbox, pending, "pending")
    put_member(sandbox, subscribed, "subscribed")
    # When each address is signed up
    answers = [post(f"{stack.api_url}/subscribe", email) for email in (new, pending, subscribed)]
    # Then the answers differ in their request ids only
    assert raw_answer(answers[0]) == raw_answer(answers[1]) == raw_answer(answers[2])
    assert len({answer.headers["x-amzn-RequestId"] for answer in answers}) == 3
    # And the worker, off the queue, adds the new person and leaves the members as they were
    deadline = time.monotonic() + 60
    while audience_member(sandbox, new) is None:
        assert time.monotonic() < deadline, "the signup worker never applied the queued signup"
        time.sleep(0.2)
    assert member(sandbox, new)["status"] == "pending"
    for email, status in ((pending, "pending"), (subscribed, "subscribed")):
        found = member(sandbox, email)
        assert (found["status"], found["merge_fields"]["FNAME"]) == (status, "Ann")
    sandbox.close()
