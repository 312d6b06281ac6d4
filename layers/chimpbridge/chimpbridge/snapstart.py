"""What a SnapStart restore must redo (docs/snapstart.md).

Under SnapStart, Lambda runs init once per published version, snapshots the process, and
resumes every new execution environment from that one snapshot. Whatever init left in memory
is then shared by all of them. Init here builds no client, reads no secret and opens no
connection (those wait for the first invocation), so two things are left to redo:

* ``random``'s state, seeded once at import: every restored environment would draw the same
  retry jitter (transport.py, batch.py) and retry in lockstep against Mailchimp's connection
  limit. It is reseeded from the operating system's entropy.
* Anything a future init might cache (secrets, keys, pooled connections, clients) is dropped,
  so an init-time read can never be served stale, or shared, after a restore.

Hooks are registered only while Lambda initialises a snapshot (``AWS_LAMBDA_INITIALIZATION_TYPE``
is ``snap-start``): ``snapshot_restore_py`` ships with Lambda's Python runtimes, and nothing
imports it anywhere else (tests, ``make dev``, ``sam local``, functions without SnapStart).
"""

from __future__ import annotations

import importlib
import random
import sys

from chimpbridge import settings

# Modules that cache per container, and what forgets their caches. A module not imported yet
# has cached nothing, so none is imported just to be cleared.
RESETS = (
    ("chimpbridge.secrets", "reset"),
    ("chimpbridge.clients", "clear"),
    ("chimpbridge.dal.aws", "clear"),
    ("chimpbridge.dal.signup_limits", "reset"),
)

_registered = False


def register_restore_hooks() -> bool:
    """Register :func:`after_restore` with Lambda, once, when this init makes a snapshot."""
    global _registered  # noqa: PLW0603
    if _registered or not settings.load(settings.InitSettings).snapshot:
        return False
    hooks = importlib.import_module("snapshot_restore_py")
    hooks.register_after_restore(after_restore)
    _registered = True
    return True


def after_restore() -> None:
    """Give this environment its own randomness and nothing cached from the snapshot."""
    random.seed()  # no argument: fresh entropy from os.urandom
    for module_name, reset in RESETS:
        module = sys.modules.get(module_name)
        if module is not None:
            getattr(module, reset)()
