"""Code, comments and manuals point only where a reader can follow: to files, sections and
names in this repository, never to a tracker's numbers or to the request a change came from."""

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
