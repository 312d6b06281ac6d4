"""The fixture template's stack, shared by the tests in this folder (one per xdist worker)."""

import pytest

from sandbox.stack.pytest_plugin import RunningStack, StackFactory
from tests.stack.support import FIXTURE_SECRET_VALUE, FIXTURE_TEMPLATE


@pytest.fixture(scope="session")
def fixture_stack(local_stack_factory: StackFactory) -> RunningStack:
    """tests/stack/fixtures/template.yaml running on free ports (no Mailchimp sandbox needed)."""
    return local_stack_factory(
        FIXTURE_TEMPLATE,
        start_sandbox=False,
        secret_seeds={"FixtureSecret": lambda: dict(FIXTURE_SECRET_VALUE)},
    )
