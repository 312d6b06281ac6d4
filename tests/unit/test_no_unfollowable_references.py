"""Code, comments and manuals point only where a reader can follow: to files, sections and
names in this repository, never to a tracker's numbers or to the request a change came from.
A section named after a manual (``docs/benchmarks.md, "Cold start of every function"``) is one
of its headings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sandbox.stack.env_file import REPO_ROOT

FOLDERS = ("layers", "functions", "sandbox", "bench", "tools", "tests", "statemachine", "examples", "docs", "events")
TOP_FILES = ("README.md", "template.yaml", "Makefile", "samconfig.toml", "pyproject.toml")
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".json", ".html", ".txt", ".jsonnet", ".mk", ".sh"}
SKIPPED = {"__pycache__", "node_modules", ".venv", "results"}

UNFOLLOWABLE = re.compile(
    r"\b(?:issue|ticket)s?\s*(?:#|no\.?\s*)?\d+"  # a tracker's number
    r"|\b(?:this|the|that|our)\s+(?:issue|ticket)(?:'s)?\b"  # the request a change came from
    r"|\bissue's\b",
    re.IGNORECASE,
)
# A manual, a comma, then one of its sections in double quotes (the manual may be a Markdown link).
SECTION_REFERENCE = re.compile(r'([\w./-]*\.md|\bREADME)(?:\]\([^)]*\))?\)?,\s*"([^"]{1,120})"')


def files() -> list[Path]:
    found = [REPO_ROOT / name for name in TOP_FILES if (REPO_ROOT / name).exists()]
    for folder in FOLDERS:
        for path in sorted((REPO_ROOT / folder).rglob("*")):
            wanted = path.suffix in SUFFIXES or path.name == "Makefile"
            if path.is_file() and wanted and not SKIPPED & set(path.relative_to(REPO_ROOT).parts):
                found.append(path)
    return found


@pytest.mark.parametrize("path", files(), ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_no_reference_to_an_issue_tracker(path):
    text = path.read_text(errors="replace")

    hits = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), start=1)
        if UNFOLLOWABLE.search(line)
    ]

    assert hits == [], "say what is meant, or name the file or section instead"


def headings(path: Path) -> list[str]:
    lines = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M).splitlines()
    return [re.sub(r"[`*]", "", line.lstrip("#").strip()).lower() for line in lines if line.startswith("#")]


def manual(named: str, where: Path) -> Path | None:
    name = "README.md" if named == "README" else named
    candidates = (where.parent / name, REPO_ROOT / name, REPO_ROOT / "docs" / name)
    return next((path for path in candidates if path.is_file()), None)


@pytest.mark.parametrize("path", files(), ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_a_section_named_after_a_manual_is_one_of_its_headings(path):
    text = path.read_text(errors="replace")

    missing = []
    for named, wrapped in SECTION_REFERENCE.findall(text):
        title = " ".join(re.sub(r"\n\s*#", " ", wrapped).split())  # a title wrapped in a comment
        target = manual(named, path)
        if target is None:
            missing.append(f"{named} (no such file)")
        elif not any(heading.startswith(title.lower()) for heading in headings(target)):
            missing.append(f'{named}, "{title}"')

    assert missing == [], "name a heading of the manual as it is written"
