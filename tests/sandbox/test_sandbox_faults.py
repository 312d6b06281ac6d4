"""Injected faults, the concurrency cap, connection counting, keys and reset."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import mailchimp_marketing
import mailchimp_transactional
import pytest
import requests
from mailchimp_marketing.api_client import ApiClientError

from sandbox.mailchimp import DEFAULT_LIST_ID, MARKETING_API_KEY, SandboxServer
from sandbox.mailchimp.client import SandboxClient, sdk_error_body


def run_concurrently(call: Callable[[], Any], count: int) -> list[Any]:
    """Start ``count`` calls at the same instant; each result is a value or the exception."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as error:  # the test inspects what each call raised
            results[index] = error

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_error_rate_one_with_503_fails_every_marketing_call(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client
) -> None:
    # Given
    sandbox.faults(error_rate=1.0, statuses=[503])

    # When
    failures = []
    for _ in range(5):
        with pytest.raises(ApiClientError) as raised:
            marketing.ping.get()
        failures.append(raised.value)

    # Then
    assert [failure.status_code for failure in failures] == [503] * 5
    assert sdk_error_body(failures[0])["title"] == "Service Unavailable"
    assert sandbox.stats()["faults_injected"] == 5


def test_error_rate_one_with_503_fails_every_transactional_call_with_mandrills_body(
    sandbox: SandboxClient, transactional: mailchimp_transactional.Client
) -> None:
    # Given
    sandbox.faults(error_rate=1.0, statuses=[503])

    # When
    with pytest.raises(mailchimp_transactional.api_client.ApiClientError) as raised:
        transactional.users.ping()

    # Then
    assert raised.value.status_code == 503
    assert sdk_error_body(raised.value)["status"] == "error"


def test_max_connections_two_rejects_three_of_five_concurrent_slow_requests(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client
) -> None:
    # Given
    sandbox.faults(max_connections=2, latency_ms=800)

    # When
    results = run_concurrently(marketing.ping.get, 5)

    # Then
    rejected = [result for result in results if isinstance(result, ApiClientError)]
    assert [error.status_code for error in rejected] == [429, 429, 429]
    assert sdk_error_body(rejected[0])["title"] == "Too Many Requests"
    assert sum(isinstance(result, dict) for result in results) == 2
    stats = sandbox.stats()
    assert stats["rejected_over_limit"] == 3
    assert stats["max_concurrent_requests"] == 2
    assert stats["requests"] == 5


def test_requests_over_the_cap_on_the_transactional_api_get_mandrills_error_body(
    sandbox: SandboxClient, transactional: mailchimp_transactional.Client
) -> None:
    # Given
    sandbox.faults(max_connections=1, latency_ms=800)

    # When
    results = run_concurrently(transactional.users.ping, 3)

    # Then
    rejected = [r for r in results if isinstance(r, mailchimp_transactional.api_client.ApiClientError)]
    assert [error.status_code for error in rejected] == [429, 429]
    assert sdk_error_body(rejected[0])["name"] == "RequestLimitExceeded"
    assert results.count("PONG!") == 1


def test_slow_requests_are_served_concurrently(sandbox: SandboxClient, marketing: mailchimp_marketing.Client) -> None:
    # Given
    sandbox.faults(latency_ms=400)

    # When
    results = run_concurrently(marketing.ping.get, 5)

    # Then
    assert all(isinstance(result, dict) for result in results)
    assert sandbox.stats()["max_concurrent_requests"] == 5


def test_latency_delays_each_api_response(sandbox: SandboxClient, marketing: mailchimp_marketing.Client) -> None:
    # Given
    sandbox.faults(latency_ms=200)

    # When
    started = time.monotonic()
    marketing.ping.get()
    elapsed = time.monotonic() - started

    # Then
    assert elapsed >= 0.2


def test_a_keep_alive_session_uses_one_connection_and_the_sdk_one_per_call(sandbox: SandboxClient) -> None:
    # Given
    session = requests.Session()
    url = f"{sandbox.marketing_url}/ping"

    # When
    for _ in range(10):
        session.get(url, auth=("user", MARKETING_API_KEY), timeout=10).raise_for_status()
    pooled = sandbox.stats()["connections_opened"]
    sandbox.reset()
    sdk = sandbox.marketing_sdk()
    for _ in range(10):
        sdk.ping.get()
    unpooled = sandbox.stats()["connections_opened"]

    # Then
    assert (pooled, unpooled) == (1, 10)
    session.close()


def test_timeout_rate_holds_the_request_until_the_client_gives_up(sandbox: SandboxClient) -> None:
    # Given
    sandbox.faults(timeout_rate=1.0)

    # When
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{sandbox.marketing_url}/ping", auth=("user", MARKETING_API_KEY), timeout=0.5)

    # Then
    assert sandbox.stats()["faults_injected"] == 1


def test_reset_releases_requests_held_by_the_timeout_fault(sandbox: SandboxClient) -> None:
    # Given a request the client gave up on, still held by the sandbox
    sandbox.faults(timeout_rate=1.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{sandbox.marketing_url}/ping", auth=("user", MARKETING_API_KEY), timeout=0.2)

    # When
    sandbox.reset()

    # Then
    deadline = time.monotonic() + 5
    while sandbox.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sandbox.stats()["in_flight"] == 0


def test_stop_does_not_wait_for_a_request_held_by_the_timeout_fault() -> None:
    # Given a request hanging in a private sandbox
    server = SandboxServer(port=0).start()
    SandboxClient(server.url).faults(timeout_rate=1.0)
    outcome: list[Exception] = []

    def call_and_keep_the_error() -> None:
        try:
            requests.get(f"{server.url}/3.0/ping", auth=("user", MARKETING_API_KEY), timeout=60)
        except requests.exceptions.RequestException as error:
            outcome.append(error)

    hanging = threading.Thread(target=call_and_keep_the_error)
    hanging.start()
    while server.app is not None and server.app.traffic.snapshot()["in_flight"] == 0:
        time.sleep(0.01)

    # When
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(timeout=10)

    # Then
    assert not stopper.is_alive()
    hanging.join(timeout=10)
    assert not hanging.is_alive()
    assert isinstance(outcome[0], requests.exceptions.ConnectionError), "dropped without an answer"


def test_faults_never_apply_to_the_control_api_or_the_page(sandbox: SandboxClient) -> None:
    # Given
    sandbox.faults(error_rate=1.0, statuses=[500], max_connections=1)

    # When
    stats = sandbox.stats()
    page = requests.get(sandbox.url, timeout=10)

    # Then
    assert stats["faults_injected"] == 0
    assert page.status_code == 200


def test_faults_can_target_one_api(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, transactional: mailchimp_transactional.Client
) -> None:
    # Given
    sandbox.faults(error_rate=1.0, statuses=[500], apis=["transactional"])

    # When
    health = marketing.ping.get()
    with pytest.raises(mailchimp_transactional.api_client.ApiClientError) as raised:
        transactional.users.ping()

    # Then
    assert health["health_status"]
    assert raised.value.status_code == 500


def test_an_unknown_fault_setting_is_refused(sandbox: SandboxClient) -> None:
    # When
    with pytest.raises(requests.HTTPError) as raised:
        sandbox.faults(eror_rate=1.0)

    # Then
    assert raised.value.response is not None
    assert raised.value.response.status_code == 400


def test_replaced_keys_reject_the_old_key_and_accept_the_new_one(sandbox: SandboxClient) -> None:
    # Given
    sandbox.set_keys(marketing=["fedcba9876543210fedcba9876543210-us21"])

    # When
    with pytest.raises(ApiClientError) as raised:
        sandbox.marketing_sdk().ping.get()
    rotated = sandbox.marketing_sdk(api_key="fedcba9876543210fedcba9876543210-us21").ping.get()

    # Then
    assert raised.value.status_code == 401
    assert rotated["health_status"]


def test_reset_restores_keys_and_empties_the_default_audience_but_keeps_it(
    sandbox: SandboxClient, marketing: mailchimp_marketing.Client, unique_email: Callable[[str], str]
) -> None:
    # Given
    sandbox.seed(DEFAULT_LIST_ID, 10)
    sandbox.seed("otherlist1", 10)
    sandbox.set_keys(marketing=["another-us21"])

    # When
    sandbox.reset()

    # Then
    lists = marketing.lists.get_all_lists()["lists"]
    assert [(audience["id"], audience["stats"]["total_contacts"]) for audience in lists] == [(DEFAULT_LIST_ID, 0)]
    assert sandbox.stats()["requests"] == 1
