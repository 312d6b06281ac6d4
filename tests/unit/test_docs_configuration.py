"""docs/configuration.md against what it documents: every function setting of settings.py and
every template parameter is in its tables once, nothing there is missing from them, and the
defaults are the code's and the template's. Also: every variable or parameter another manual
names exists, every relative link of README and docs/ leads somewhere, and README stays a
front door whose test command is the one CI runs."""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chimpbridge import settings
from sandbox.stack.cfn_yaml import load_template
from sandbox.stack.env_file import REPO_ROOT

CONFIGURATION = REPO_ROOT / "docs" / "configuration.md"
TEMPLATE = load_template(REPO_ROOT / "template.yaml")
MANUALS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
NAME = re.compile(r"`([A-Za-z][A-Za-z0-9_]*)`")


# ---------------------------------------------------------------- reading the docs
def tables(path: Path) -> Iterator[tuple[list[str], list[list[str]]]]:
    """(header cells, rows of cells) of every Markdown table outside code blocks."""
    block: list[str] = []
    fenced = False
    for line in [*path.read_text().splitlines(), ""]:
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("|"):
            block.append(line)
            continue
        if len(block) > 2:
            header, _, *rows = ([cell.strip() for cell in row.strip().strip("|").split("|")] for row in block)
            yield header, rows
        block = []


def documented(path: Path, first_column: str, second_column: str | None = None) -> list[tuple[str, str]]:
    """(name, second cell) of each row of the tables whose header starts with these columns."""
    found = []
    for header, rows in tables(path):
        if header[0] != first_column or (second_column and header[1] != second_column):
            continue
        for row in rows:
            names = NAME.findall(row[0])
            assert len(names) == 1, f"{path.name}: one name per row, not {row[0]!r}"
            found.append((names[0], row[1]))
    return found


def code_value(cell: str) -> str | None:
    """A default cell: empty (None) or one code span (its text)."""
    if not cell:
        return None
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"a default is empty or one code span, not {cell!r}"
    return match.group(1)


# ---------------------------------------------------------------- what the code and template hold
def setting_fields() -> dict[str, list[dataclasses.Field[Any]]]:
    """Environment name -> the fields of every settings model that read it."""
    fields: dict[str, list[dataclasses.Field[Any]]] = {}
    for _, model in inspect.getmembers(settings, inspect.isclass):
        if issubclass(model, settings.EnvModel) and model is not settings.EnvModel:
            for field in dataclasses.fields(model):  # type: ignore[arg-type]
                fields.setdefault(field.metadata["env"], []).append(field)
    return fields


def default_of(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None  # required: no default to document


def template_variables() -> set[str]:
    variables = set(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])
    for resource in TEMPLATE["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            variables |= set(resource["Properties"].get("Environment", {}).get("Variables", {}))
    return variables


SETTINGS = setting_fields()
ENVIRONMENT = documented(CONFIGURATION, "variable", "default")
LIBRARY_VARIABLES = dict(documented(CONFIGURATION, "variable", "read by"))
PARAMETERS = documented(CONFIGURATION, "parameter", "default")


# ---------------------------------------------------------------- the environment table
def test_every_setting_is_documented_once_and_nothing_else():
    names = [name for name, _ in ENVIRONMENT]

    assert sorted(set(SETTINGS) - set(names)) == [], "settings missing from docs/configuration.md"
    assert sorted(set(names) - set(SETTINGS)) == [], "documented variables no settings model reads"
    assert sorted({name for name in names if names.count(name) > 1}) == [], "documented twice"


@pytest.mark.parametrize(("name", "cell"), ENVIRONMENT, ids=[name for name, _ in ENVIRONMENT])
def test_the_documented_default_is_the_codes(name, cell):
    documented_default = code_value(cell)

    for field in SETTINGS.get(name, []):
        default = default_of(field)
        if documented_default is None:
            # Then no default is claimed, so the code's default must be "nothing": unset or empty
            assert not default, f"{name} defaults to {default!r}: document it"
        else:
            # Then the documented text, set as the variable, means what unset means
            assert field.metadata["parse"](documented_default) == default, f"{name}: {default!r}"


def test_every_variable_the_template_sets_is_read_by_settings_or_a_named_library():
    # Given the variables of Globals and of every function
    variables = template_variables()

    # Then each is a setting or one of the library variables, which are not settings
    assert sorted(variables - set(SETTINGS) - set(LIBRARY_VARIABLES)) == []
    assert sorted(set(LIBRARY_VARIABLES) & set(SETTINGS)) == []
    assert sorted(set(LIBRARY_VARIABLES) - variables) == [], "library variables the template no longer sets"


# ---------------------------------------------------------------- the parameters table
def test_every_template_parameter_is_documented_once_and_nothing_else():
    names = [name for name, _ in PARAMETERS]

    assert sorted(set(TEMPLATE["Parameters"]) - set(names)) == [], "parameters missing from docs/configuration.md"
    assert sorted(set(names) - set(TEMPLATE["Parameters"])) == [], "documented parameters the template lacks"
    assert sorted({name for name in names if names.count(name) > 1}) == [], "documented twice"


@pytest.mark.parametrize(("name", "cell"), PARAMETERS, ids=[name for name, _ in PARAMETERS])
def test_the_documented_parameter_default_is_the_templates(name, cell):
    parameter = TEMPLATE["Parameters"].get(name, {})

    if "Default" not in parameter:
        assert cell == "(required)"
    elif str(parameter["Default"]) == "":
        assert cell == ""
    else:
        assert code_value(cell) == str(parameter["Default"])


# ---------------------------------------------------------------- the other manuals
@pytest.mark.parametrize("path", MANUALS, ids=[path.name for path in MANUALS])
def test_variables_and_parameters_other_manuals_tabulate_exist(path):
    for header, rows in tables(path):
        first = (header[0].split() or [""])[0]
        known = {"variable": set(SETTINGS) | set(LIBRARY_VARIABLES), "parameter": set(TEMPLATE["Parameters"])}
        if first not in known:
            continue
        for row in rows:
            for name in NAME.findall(row[0]):
                assert name in known[first], f"{path.name} names the {first} {name}, which does not exist"


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    seen: dict[str, int] = {}
    result = set()
    fenced = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not line.startswith("#"):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def relative_links(path: Path) -> Iterator[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:", target):
            yield target


@pytest.mark.parametrize("path", MANUALS, ids=[path.name for path in MANUALS])
def test_every_relative_link_leads_somewhere(path):
    for target in relative_links(path):
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path

        assert linked.exists(), f"{path.name} links {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{path.name} links {target}: no such heading"


def test_readme_links_every_manual():
    readme = REPO_ROOT / "README.md"
    linked = {(readme.parent / target.partition("#")[0]).resolve() for target in relative_links(readme)}

    manuals = {path.resolve() for path in (REPO_ROOT / "docs").glob("*.md")}

    assert sorted(path.name for path in manuals - linked) == [], "add a line to README's Read on"


def test_readme_is_a_front_door_whose_test_command_ci_runs():
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()

    assert len(readme.splitlines()) < 200
    assert re.search(r"^make test\b", readme, re.M)
    assert ci.rstrip().splitlines()[-1] == "make test"
