"""The sandbox is a product of its own: it never shares code with what it tests.

It stands in for Mailchimp, Mandrill, API Gateway and Lambda, so a bug in the layer must not be
able to hide in it (both sides would agree with each other and the tests would pass). The local
stack runs the functions, but as Lambda does: in their own processes, with the template's
CodeUri and the layer's folder on their own ``sys.path`` (``sandbox/stack/lambda_runtime.py``),
never by importing them into the sandbox.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "sandbox"
LAYER = ROOT / "layers" / "chimpbridge"
# What the sandbox emulates the cloud for: the layer package and the functions.
UNDER_TEST = ("chimpbridge", "functions")

# Run with -I (no PYTHONPATH, no user site, no script folder on sys.path): the repository root
# is the only folder added, and any import of the layer or a function fails loudly, even one
# that a try/except would otherwise turn into a quiet fallback.
IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, sys
from pathlib import Path

root, layer, under_test = sys.argv[1], Path(sys.argv[2]).resolve(), tuple(sys.argv[3:])


class RefuseWhatTheSandboxTests:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in under_test:
            raise ImportError(f"the sandbox imported {name}")
        return None


sys.meta_path.insert(0, RefuseWhatTheSandboxTests())
sys.path.insert(0, root)
assert all(Path(entry or ".").resolve() != layer for entry in sys.path), sys.path

import sandbox

names = ["sandbox", *(module.name for module in pkgutil.walk_packages(sandbox.__path__, "sandbox."))]
for name in names:
    importlib.import_module(name)
print(json.dumps(names))
"""


def sandbox_modules() -> list[str]:
    names = []
    for path in sorted(SANDBOX.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_sandbox_module_imports_without_the_layer() -> None:
    # Given a Python whose path holds the repository but not the layer, and that refuses to
    # import the layer or a function
    # When every module of the sandbox is imported in it
    completed = subprocess.run(
        [sys.executable, "-I", "-c", IMPORT_EVERY_MODULE, str(ROOT), str(LAYER), *UNDER_TEST],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then they all import, and that was all of them
    assert completed.returncode == 0, completed.stderr
    imported = json.loads(completed.stdout.splitlines()[-1])
    assert sorted(imported) == sandbox_modules()


def imported_roots(path: Path) -> set[str]:
    """Top-level packages a source file imports anywhere: at module level, inside functions, or
    by name through importlib (``import_module("chimpbridge...")``)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.partition(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            roots.add(node.args[0].value.partition(".")[0])
    return roots


def test_no_sandbox_source_imports_the_layer_or_a_function() -> None:
    # Given every source file of the sandbox, including imports a module only makes when a
    # function runs (which importing the module would not reveal)
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path).intersection(UNDER_TEST))
        for path in sorted(SANDBOX.rglob("*.py"))
    }
    # Then none of them names the layer or a function
    assert {path: roots for path, roots in offenders.items() if roots} == {}
