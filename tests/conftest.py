"""Shared pytest wiring. Fixtures for the Mailchimp sandbox and the local stack live in the
sandbox package so that tests, benchmarks and the local stack share one implementation."""

import os
from collections.abc import Generator

import pytest

# What the template's Globals give every function in Lambda.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "chimpbridge")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ChimpBridge")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

pytest_plugins: list[str] = [
    "tests.support.aws",
    "tests.support.clock",
    "tests.support.browser",
    "tests.support.signup",
    "sandbox.stack.pytest_plugin",
    "sandbox.mailchimp.pytest_plugin",
    "tests.support.registration",
    "tests.support.mailchimp_webhook",
    "tests.support.mandrill",
]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport]:
    """Under CI=true a skip is a failure: a green CI means every test ran. Locally (Chromium,
    Prism, the specifications or the build output missing) a skip stays a skip, with its reason."""
    report = yield
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every test must run: {reason}"
    return report
