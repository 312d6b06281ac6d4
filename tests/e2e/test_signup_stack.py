"""POST /subscribe end to end on the local stack: real HTTP to the API, the template's functions
in their own processes, SQS (moto) driving the signup worker, and the Mailchimp sandbox."""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from chimpbridge.logic.signup_apply import subscriber_hash
from sandbox.mailchimp import DEFAULT_LIST_ID
from sandbox.mailchimp.client import SandboxClient
from tests.support.signup import audience_member

pytestmark = [pytest.mark.xdist_group("signup-stack"), pytest.mark.slow]

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"}


@pytest.fixture(scope="module")
def stack(signup_stack):
    return signup_stack


@pytest.fixture(scope="module")
def sandbox(stack):
    client = SandboxClient(stack.sandbox_url)
    yield client
    client.faults()
    client.close()


@pytest.fixture
def email(request):
    def make(prefix="e2e", domain="example.org"):
        return f"{prefix}-{request.node.name[:30].replace('_', '-')}-{uuid.uuid4().hex[:8]}@{domain}"

    return make


def subscribe(stack, *, json_body=None, form=None, headers=None):
    return requests.post(
        f"{stack.api_url}/subscribe",
        json=json_body,
        data=form,
        headers={**BROWSER, **(headers or {})},
        allow_redirects=False,
        timeout=30,
    )


def set_status(sandbox, address, status):
    sandbox.marketing_sdk().lists.set_list_member(
        DEFAULT_LIST_ID, subscriber_hash(address), {"email_address": address, "status_if_new": status, "status": status}
    )


def test_json_post_creates_a_pending_member_with_fields_language_and_tags(stack, sandbox, email):
    address = email()
    answer = subscribe(
        stack,
        json_body={"email": address, "first_name": "Ann", "tags": ["blog"], "interests": ["9143cf3bd1"]},
        headers={"Accept-Language": "es-ES,es;q=0.9"},
    )
    assert (answer.status_code, answer.json()["status"]) == (200, "pending")
    found = audience_member(sandbox, address)
    assert (found["status"], found["merge_fields"]["FNAME"], found["language"]) == ("pending", "Ann", "es_ES")
    assert [tag["name"] for tag in found["tags"]] == ["blog"]
    assert found["interests"] == {"9143cf3bd1": True}


def test_embedded_form_post_creates_a_pending_member(stack, sandbox, email):
    address = email()
    form = {"EMAIL": address, "FNAME": "Form", "tags": "2004321", "b_abc_def": "", "u": "abc", "id": "def"}
    answer = subscribe(stack, form=form, headers={"Accept": "*/*", "Accept-Language": "pt-PT"})
    assert answer.status_code == 200
    found = audience_member(sandbox, address)
    assert (found["status"], found["merge_fields"]["FNAME"], found["language"]) == ("pending", "Form", "pt_PT")
    assert [tag["name"] for tag in found["tags"]] == ["newsletter"]


def test_second_post_after_confirming_is_already_subscribed_without_a_duplicate(stack, sandbox, email):
    # Given a person who signed up and confirmed by email
    address = email()
    subscribe(stack, json_body={"email": address})
    set_status(sandbox, address, "subscribed")
    before = sandbox.marketing_sdk().lists.get_list_members_info(DEFAULT_LIST_ID, count=1)["total_items"]
    # When they sign up again
    answer = subscribe(stack, json_body={"email": address})
    # Then they are told so, still subscribed, and still one member
    assert answer.json()["status"] == "already_subscribed"
    assert audience_member(sandbox, address)["status"] == "subscribed"
    assert sandbox.marketing_sdk().lists.get_list_members_info(DEFAULT_LIST_ID, count=1)["total_items"] == before


def test_unsubscribed_member_becomes_pending(stack, sandbox, email):
    address = email()
    set_status(sandbox, address, "unsubscribed")
    assert subscribe(stack, json_body={"email": address}).json()["status"] == "pending"
    assert audience_member(sandbox, address)["status"] == "pending"


@pytest.mark.parametrize(
    ("setup", "domain", "problem"),
    [
        ("forgotten", "example.org", "signup-forgotten"),
        ("cleaned", "example.org", "signup-cleaned"),
        ("none", "example.com", "signup-email-looks-fake"),
    ],
)
def test_each_refusal_gets_its_own_422(stack, sandbox, email, setup, domain, problem):
    address = email(domain=domain)
    if setup == "cleaned":
        set_status(sandbox, address, "cleaned")
    if setup == "forgotten":
        set_status(sandbox, address, "subscribed")
        sandbox.marketing_sdk().lists.delete_list_member_permanent(DEFAULT_LIST_ID, subscriber_hash(address))
    answer = subscribe(stack, json_body={"email": address})
    assert answer.status_code == 422
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["type"] == f"urn:chimpbridge:problem:{problem}"
    if setup == "forgotten":
        assert answer.json()["signup_url"] == "https://eepurl.com/chimpbridge"


def test_honeypot_post_writes_nothing(stack, sandbox, email):
    address = email()
    answer = subscribe(stack, form={"EMAIL": address, "b_abc_def": "I am a bot"}, headers={"Accept": "*/*"})
    assert answer.json()["status"] == "pending"
    assert audience_member(sandbox, address) is None


def test_disallowed_tag_is_not_applied(stack, sandbox, email):
    address = email()
    subscribe(stack, json_body={"email": address, "tags": ["blog", "free-money"]})
    assert [tag["name"] for tag in audience_member(sandbox, address)["tags"]] == ["blog"]


def test_browser_form_post_gets_its_303(stack, sandbox, email, signup_pages):
    answer = subscribe(stack, form={"EMAIL": email()}, headers={"Accept": "text/html,*/*;q=0.8"})
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith(signup_pages.done_page + "?")
    location = urlsplit(answer.headers["Location"])
    assert parse_qs(location.query)["status"] == ["pending"]


def test_browser_form_post_with_an_error_gets_its_303(stack, email):
    answer = subscribe(stack, form={"EMAIL": "not-an-address"}, headers={"Accept": "text/html"})
    assert answer.status_code == 303
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert (query["status"], query["field"]) == (["error"], ["EMAIL"])


def metric_total(lines, name):
    """The sum of one metric over the Embedded Metric Format lines among ``lines``."""
    total = 0.0
    for line in lines:
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        value = json.loads(line).get(name, 0)
        total += sum(value) if isinstance(value, list) else value
    return total


def wait_until(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(1)


def test_with_mailchimp_down_100_signups_are_queued_then_all_arrive_once(stack, sandbox, email):
    # Given Mailchimp answering 503 to everything
    addresses = [email(f"outage{index}") for index in range(100)]
    worker_logs_before = len(stack.logs("SignupWorkerFunction"))
    sandbox.faults(error_rate=1.0, statuses=[503])
    try:
        # When 100 people sign up
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(lambda address: subscribe(stack, json_body={"email": address}), addresses))
    finally:
        sandbox.faults()
    # Then every one of them heard 202 queued
    assert [answer.status_code for answer in answers] == [202] * 100
    assert {answer.json()["status"] for answer in answers} == {"queued"}
    # And once Mailchimp is back, the worker adds every one of them (each looked up by its hash)
    missing = set(addresses)

    def all_arrived():
        missing.difference_update({address for address in missing if audience_member(sandbox, address) is not None})
        return not missing

    wait_until(all_arrived, 120)
    found = [audience_member(sandbox, address) for address in addresses]
    assert [(entry["email_address"], entry["status"]) for entry in found] == [(a, "pending") for a in addresses]
    # exactly once: the queue drained, and the worker applied 100 signups, not one more (a
    # second application would not show as a second member: the sandbox keys members by hash)
    sqs, queue_url = stack.client("sqs"), stack.resource("SignupQueue").url
    counts = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

    def drained():
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=counts)["Attributes"]
        return all(attributes[name] == "0" for name in counts)

    wait_until(drained, 60)

    def worker_metric(name):
        return metric_total(stack.logs("SignupWorkerFunction")[worker_logs_before:], name)

    wait_until(lambda: worker_metric("QueuedSignupApplied") >= 100, 10)  # log lines arrive through a pipe
    assert (worker_metric("QueuedSignupApplied"), worker_metric("QueuedSignupRefused")) == (100, 0)
    dead_letters = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.resource("SignupDeadLetterQueue").url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert dead_letters["Attributes"]["ApproximateNumberOfMessages"] == "0"
