"""Run the benchmarks: every bench/bench_*.py module's main(), optionally only those whose
name contains one of the words given on the command line."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def discover(filters: list[str]) -> list[str]:
    names = sorted(path.stem for path in Path(__file__).parent.glob("bench_*.py"))
    return [name for name in names if not filters or any(word in name for word in filters)]


def main(argv: list[str]) -> int:
    selected = discover(argv)
    if not selected:
        print(f"no benchmark matches {argv}")
        return 1
    for name in selected:
        print(f"== {name}")
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
