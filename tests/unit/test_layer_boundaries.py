"""The layer's package map holds: every S3, DynamoDB, SQS and EventBridge call is in ``dal/``,
and no ``logic`` module imports boto3. Held by reading the modules (``ast``), not by importing
them: nothing runs, and an import inside a function counts as much as one at the top.

Where boto3 may appear outside ``dal/`` at all (``BOTO3_OUTSIDE_DAL``), and why:

* ``secrets.py`` reads Secrets Manager through its own signed request (cold start), and falls
  back to boto3 only where there are no credentials in the environment (a laptop's profile or
  SSO): boto3's credential chain is what it needs there. Secrets Manager is not a data store of
  the bundle's; its writes (the connect flow) are in ``dal/connect_store.py``.

Nothing else: ``credentials.py``, ``sigv4.py`` and ``clients.py`` sign and send requests
without boto3, and the handlers in ``functions/`` stay thin (no boto3 there either).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYER = REPO_ROOT / "layers" / "chimpbridge" / "chimpbridge"
FUNCTIONS = REPO_ROOT / "functions"

# Top-level packages that are boto3: the SDK, its core, its transfer manager, its type stubs.
BOTO3_PACKAGES = ("boto3", "botocore", "s3transfer", "mypy_boto3")
# The services whose calls belong in dal/.
DATA_SERVICES = frozenset({"s3", "dynamodb", "sqs", "events"})
# dal/'s client factory: whoever imports it calls AWS.
CLIENT_FACTORY = "chimpbridge.dal.aws"
BOTO3_OUTSIDE_DAL = frozenset({"chimpbridge.secrets"})  # see the docstring


@dataclass(frozen=True)
class Module:
    path: Path
    name: str  # dotted
    tree: ast.Module

    @property
    def in_dal(self) -> bool:
        return self.name.startswith("chimpbridge.dal.")

    @property
    def in_logic(self) -> bool:
        return self.name == "chimpbridge.logic" or self.name.startswith("chimpbridge.logic.")


@dataclass(frozen=True)
class Finding:
    module: Module
    line: int
    what: str

    def __str__(self) -> str:
        where = (
            self.module.path.relative_to(REPO_ROOT) if self.module.path.is_relative_to(REPO_ROOT) else self.module.path
        )
        return f"{where}:{self.line}: {self.what}"


def parse(path: Path, name: str) -> Module:
    return Module(path, name, ast.parse(path.read_text(), str(path)))


def layer_modules(package: Path = LAYER) -> list[Module]:
    modules = []
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules.append(parse(path, ".".join(parts)))
    return modules


def function_modules(root: Path = FUNCTIONS) -> list[Module]:
    return [parse(path, f"functions.{path.parent.name}.app") for path in sorted(root.glob("*/app.py"))]


def imported(module: Module) -> Iterator[tuple[int, str]]:
    """Every module name ``module`` imports, anywhere in it (``from a import b``: ``a``, ``a.b``)."""
    package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def is_boto3(name: str) -> bool:
    top = name.split(".", maxsplit=1)[0]
    return any(top == package or top.startswith(f"{package}_") for package in BOTO3_PACKAGES)


def boto3_imports(module: Module) -> list[Finding]:
    first: dict[int, str] = {}
    for line, name in imported(module):
        if is_boto3(name):
            first.setdefault(line, name)
    return [Finding(module, line, f"imports {name}") for line, name in sorted(first.items())]


def data_clients(module: Module) -> Iterator[Finding]:
    """``x.client("s3")``, ``x.resource(service_name="dynamodb")``: a client of a data service."""
    for node in ast.walk(module.tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in {"client", "resource"}:
            continue
        arguments = [*node.args[:1], *(keyword.value for keyword in node.keywords if keyword.arg == "service_name")]
        for argument in arguments:
            if isinstance(argument, ast.Constant) and argument.value in DATA_SERVICES:
                yield Finding(module, node.lineno, f"makes a {argument.value} client (dal/'s job)")


def aws_outside_dal(modules: list[Module]) -> list[Finding]:
    """Modules outside dal/ that make a data service's client, or use dal's client factory."""
    found = []
    for module in modules:
        if module.in_dal:
            continue
        for line, name in imported(module):
            if name == CLIENT_FACTORY:
                found.append(Finding(module, line, f"imports {CLIENT_FACTORY} (AWS clients are dal/'s)"))
        found += data_clients(module)
    return found


def boto3_outside_dal(modules: list[Module]) -> list[Finding]:
    return [
        finding
        for module in modules
        if not module.in_dal and module.name not in BOTO3_OUTSIDE_DAL
        for finding in boto3_imports(module)
    ]


def boto3_in_logic(modules: list[Module]) -> list[Finding]:
    return [finding for module in modules if module.in_logic for finding in boto3_imports(module)]


@pytest.fixture(scope="module")
def modules() -> list[Module]:
    found = layer_modules() + function_modules()
    # A walk that read nothing would pass: it must read the layer, its dal/ and the functions.
    names = {module.name for module in found}
    assert {"chimpbridge.logic.export", "chimpbridge.dal.export_objects", "functions.audience_export.app"} <= names
    return found


def test_no_logic_module_imports_boto3(modules: list[Module]) -> None:
    assert [str(finding) for finding in boto3_in_logic(modules)] == []


def test_only_dal_calls_s3_dynamodb_sqs_or_eventbridge(modules: list[Module]) -> None:
    assert [str(finding) for finding in aws_outside_dal(modules)] == []


def test_boto3_outside_dal_only_where_the_docstring_says_why(modules: list[Module]) -> None:
    assert [str(finding) for finding in boto3_outside_dal(modules)] == []


def test_the_walk_finds_what_each_rule_forbids(tmp_path: Path) -> None:
    # Given a layer whose logic imports botocore lazily, builds an S3 client and uses dal's
    # factory, and whose dal/ does all of that rightly
    package = tmp_path / "chimpbridge"
    (package / "logic").mkdir(parents=True)
    (package / "dal").mkdir()
    (package / "logic" / "leaky.py").write_text(
        "from chimpbridge.dal import aws\n"
        "def f():\n"
        "    from botocore.exceptions import ClientError\n"
        "    import boto3\n"
        "    return boto3.client('s3'), aws.sqs(), ClientError\n"
    )
    (package / "dal" / "fine.py").write_text("import boto3\nfrom chimpbridge.dal import aws\nboto3.client('s3')\n")

    # When the rules read it
    walked = layer_modules(package)

    # Then each finds the logic module's lines, and nothing in dal/
    assert [finding.line for finding in boto3_in_logic(walked)] == [3, 4]
    assert [finding.line for finding in boto3_outside_dal(walked)] == [3, 4]
    assert sorted(finding.line for finding in aws_outside_dal(walked)) == [1, 5]
