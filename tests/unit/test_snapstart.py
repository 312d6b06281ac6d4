"""What a SnapStart restore redoes: every environment restored from one snapshot gets its own
randomness and nothing cached from init. Lambda's hook library is faked: it exists only in
Lambda's Python runtimes."""

import random
import sys
import types

import pytest

from chimpbridge import clients, secrets, settings, snapstart
from chimpbridge.observability import instrument


class FakeHookLibrary(types.ModuleType):
    """``snapshot_restore_py`` as Lambda's runtime has it: a registry the runtime runs."""

    def __init__(self) -> None:
        super().__init__("snapshot_restore_py")
        self.after_restore: list = []

    def register_after_restore(self, func, *args, **kwargs):
        self.after_restore.append(func)
        return func


@pytest.fixture
def hook_library(monkeypatch):
    library = FakeHookLibrary()
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", library)
    monkeypatch.setattr(snapstart, "_registered", False)
    yield library
    settings.clear()


def test_hooks_are_registered_while_lambda_initialises_a_snapshot(hook_library, monkeypatch):
    # Given the init that Lambda snapshots for a SnapStart version
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    settings.clear()
    # When handlers are decorated (twice: registration happens once)
    assert snapstart.register_restore_hooks() is True
    assert snapstart.register_restore_hooks() is False
    # Then the restore hook is registered with Lambda's library
    assert hook_library.after_restore == [snapstart.after_restore]


@pytest.mark.parametrize("init_type", [None, "on-demand", "provisioned-concurrency"])
def test_no_hook_library_is_needed_without_snapstart(init_type, monkeypatch):
    # Given an ordinary init (or tests, make dev, sam local), where the library does not exist
    monkeypatch.delitem(sys.modules, "snapshot_restore_py", raising=False)
    monkeypatch.setattr(snapstart, "_registered", False)
    if init_type is None:
        monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    else:
        monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", init_type)
    settings.clear()
    # Then nothing is registered and nothing is imported
    assert snapstart.register_restore_hooks() is False
    assert "snapshot_restore_py" not in sys.modules
    settings.clear()


def test_the_instrumented_handlers_register_the_hook(hook_library, monkeypatch):
    # Given a SnapStart init
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    settings.clear()

    # When a handler is decorated, as every function's app.py does at import
    @instrument()
    def handler(event, context):
        return event

    # Then the restore hook is registered
    assert hook_library.after_restore == [snapstart.after_restore]


def test_environments_restored_from_one_snapshot_draw_different_jitter():
    # Given two environments restored from one snapshot: the same random state
    snapshot = random.getstate()
    draws = []
    for _ in range(2):
        random.setstate(snapshot)
        # When each runs the restore hook before its first retry
        snapstart.after_restore()
        draws.append([random.uniform(0, 5) for _ in range(4)])
    # Then their backoff delays differ (without it they would retry in lockstep)
    assert draws[0] != draws[1]


def test_without_the_hook_they_would_retry_in_lockstep():
    snapshot = random.getstate()
    draws = []
    for _ in range(2):
        random.setstate(snapshot)
        draws.append([random.uniform(0, 5) for _ in range(4)])
    assert draws[0] == draws[1]


def test_nothing_cached_before_the_snapshot_survives_the_restore(monkeypatch):
    # Given a secret value cached before the snapshot
    monkeypatch.setitem(secrets._cache, "arn:cached-at-init", (0.0, '{"api_key": "k"}'))
    cleared = []
    monkeypatch.setattr(clients, "clear", lambda: cleared.append("clients"))
    # When the environment is restored
    snapstart.after_restore()
    # Then the value will be read again, and the Mailchimp clients (with their pools) rebuilt
    assert "arn:cached-at-init" not in secrets._cache
    assert cleared == ["clients"]


def test_a_module_not_imported_is_not_imported_to_be_cleared(monkeypatch):
    # Given a function that never loaded the boto3 clients
    monkeypatch.delitem(sys.modules, "chimpbridge.dal.aws", raising=False)
    # When it is restored
    snapstart.after_restore()
    # Then the restore did not load them either (boto3 costs ~0.3 s)
    assert "chimpbridge.dal.aws" not in sys.modules
