"""What the signup function imports when it starts: its cold start is measured against a
tutorial handler (bench/bench_coldstart.py), and these packages are what made it slow.
A fresh interpreter, as in a new Lambda execution environment; no timing, only the modules."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Each lengthens the cold start (docs/benchmarks.md, "Cold start of every function").
KEPT_OUT = ("pydantic", "pydantic_core", "boto3", "aws_lambda_powertools.event_handler", "asyncio", "aws_xray_sdk")


def test_the_signup_function_starts_without_the_slow_packages():
    # Given a fresh interpreter with the function's folder and the layer on its path
    code = "import json, sys; import app; print(json.dumps(sorted(sys.modules)))"
    paths = os.pathsep.join([str(REPO_ROOT / "functions" / "signup"), str(REPO_ROOT / "layers" / "chimpbridge")])
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": paths, "POWERTOOLS_TRACE_DISABLED": "true"}
    # When it imports the handler, as Lambda does at init
    output = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    loaded = json.loads(output.stdout)
    # Then none of the slow packages came with it (the handler did load)
    assert "chimpbridge.logic.signup" in loaded
    assert [name for name in loaded if any(name == out or name.startswith(f"{out}.") for out in KEPT_OUT)] == []
