"""Scripts that skip the form token, on the local stack: the template's AWS WAF rate rule per IP
and the public functions' reserved concurrency, emulated in front of the real functions (real
HTTP to the API, the Mailchimp sandbox behind them). The limits come from the template's
parameters, set small here so the bursts stay short."""

import threading
import time
import uuid

import pytest
import requests

from sandbox.mailchimp import DEFAULT_LIST_ID
from sandbox.mailchimp.client import SandboxClient

pytestmark = [pytest.mark.xdist_group("signup-abuse-stack"), pytest.mark.slow]

SCRIPT = {"User-Agent": "python-requests/2.32 (a script, no form token)"}
RATE_LIMIT = 10
BURST = 500


def members(sandbox):
    return sandbox.marketing_sdk().lists.get_list_members_info(DEFAULT_LIST_ID, count=1)["total_items"]


def test_a_burst_of_token_less_signups_from_one_ip_is_stopped_by_the_waf_rate_rule(local_stack_factory):
    # Given the stack with the web ACL on (WafRateLimitPerIp), and a script with no form token
    stack = local_stack_factory(parameters={"WafRateLimitPerIp": str(RATE_LIMIT), "WafRateLimitWindowSeconds": "600"})
    sandbox = SandboxClient(stack.sandbox_url)
    before = members(sandbox)
    # When it posts 500 signups for distinct addresses from one IP
    with requests.Session() as session:
        answers = [
            session.post(
                f"{stack.api_url}/subscribe",
                json={"email": f"burst-{uuid.uuid4().hex[:12]}@example.org"},
                headers=SCRIPT,
                timeout=30,
            )
            for _ in range(BURST)
        ]
    # Then the first RATE_LIMIT were signups and the rest got the rule's 429, which never reached
    # the function: the audience grew by RATE_LIMIT only
    statuses = [answer.status_code for answer in answers]
    assert statuses == [200] * RATE_LIMIT + [429] * (BURST - RATE_LIMIT)
    blocked = answers[-1]
    assert blocked.headers["Retry-After"] == "600"
    assert blocked.json()["type"] == "urn:chimpbridge:problem:rate-limited"
    assert members(sandbox) - before == RATE_LIMIT
    # And the hooks and webhooks, outside the rule's scope, still answer that IP
    assert requests.get(f"{stack.api_url}/health", timeout=10).status_code == 200
    sandbox.close()


def test_without_the_parameter_there_is_no_web_acl(local_stack):
    stack = local_stack
    with requests.Session() as session:
        statuses = {
            session.post(
                f"{stack.api_url}/subscribe", json={"email": f"free-{uuid.uuid4().hex[:12]}@example.org"}, timeout=30
            ).status_code
            for _ in range(RATE_LIMIT + 5)
        }
    assert statuses == {200}


def test_reserved_concurrency_turns_away_what_exceeds_it(local_stack_factory):
    # Given the public functions with a reserved concurrency of 1, and a signup held inside the
    # function (Mailchimp does not answer)
    stack = local_stack_factory(parameters={"PublicFunctionReservedConcurrency": "1"})
    sandbox = SandboxClient(stack.sandbox_url)
    sandbox.faults(timeout_rate=1.0, timeout_seconds=30)
    held = {}

    def first_signup():
        held["answer"] = requests.post(
            f"{stack.api_url}/subscribe", json={"email": f"held-{uuid.uuid4().hex[:12]}@example.org"}, timeout=60
        )

    thread = threading.Thread(target=first_signup)
    thread.start()
    deadline = time.monotonic() + 30
    while sandbox.stats()["in_flight"] < 1:  # wait until the function is inside Mailchimp's call
        assert time.monotonic() < deadline, "the first signup never reached the sandbox"
        time.sleep(0.05)
    # When another request reaches the same function meanwhile
    turned_away = requests.post(
        f"{stack.api_url}/subscribe", json={"email": f"second-{uuid.uuid4().hex[:12]}@example.org"}, timeout=30
    )
    # Then Lambda throttles it, which API Gateway answers with a 500; the held one still finishes
    assert turned_away.status_code == 500
    assert "function" not in turned_away.text.lower()
    sandbox.reset()
    thread.join(timeout=60)
    assert held["answer"].status_code in (200, 202)
    assert any("throttled" in line for line in stack.logs("SignupFunction"))
    sandbox.close()


def test_one_address_gets_at_most_the_daily_limit_of_signups_whatever_the_ip(local_stack):
    # Given the template's default limit per address (SignupMaxPerAddressPerDay 3), counted in
    # the stack's state table
    address = f"victim-{uuid.uuid4().hex[:12]}@example.org"
    limit = 3
    # When a script signs the same address up once more than that, claiming a new IP each time
    answers = [
        requests.post(
            f"{local_stack.api_url}/subscribe",
            json={"email": address},
            headers={**SCRIPT, "X-Forwarded-For": f"198.51.100.{attempt}"},
            timeout=30,
        )
        for attempt in range(limit + 1)
    ]
    # Then the last is refused with Retry-After, before Mailchimp could send anything
    assert [answer.status_code for answer in answers] == [200] * limit + [429]
    assert answers[-1].json()["type"] == "urn:chimpbridge:problem:signup-too-many-for-address"
    assert int(answers[-1].headers["Retry-After"]) > 0
