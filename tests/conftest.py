"""Shared pytest wiring. Fixtures for the Mailchimp sandbox live in the sandbox package so
that tests, benchmarks and the local stack share one implementation."""

pytest_plugins: list[str] = []
