"""Shared pytest wiring. Fixtures for the Mailchimp sandbox and the local stack live in the
sandbox package so that tests, benchmarks and the local stack share one implementation."""

import os

# What the template's Globals give every function in Lambda.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "chimpbridge")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ChimpBridge")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

pytest_plugins: list[str] = [
    "tests.support.aws",
    "tests.support.browser",
    "tests.support.signup",
    "sandbox.stack.pytest_plugin",
    "sandbox.mailchimp.pytest_plugin",
    "tests.support.registration",
]
