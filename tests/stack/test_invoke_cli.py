"""`python -m sandbox.stack invoke` (what `make invoke` runs): one function, one event, JSON out."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sandbox.stack.pytest_plugin import RunningStack
from sandbox.stack.services import free_port
from tests.stack.support import FIXTURE_TEMPLATE

pytestmark = pytest.mark.xdist_group("local-stack-fixture")


def _invoke_cli(logical_id: str, event: object, tmp_path: Path, moto_port: int) -> subprocess.CompletedProcess[str]:
    event_file = tmp_path / f"{uuid.uuid4().hex}.json"
    event_file.write_text(json.dumps(event))
    environment = {**os.environ, "MOTO_PORT": str(moto_port), "SANDBOX_PORT": str(free_port("127.0.0.1"))}
    command = [sys.executable, "-m", "sandbox.stack", "--template", str(FIXTURE_TEMPLATE), "--no-sandbox"]
    return subprocess.run(
        [*command, "invoke", logical_id, str(event_file)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_invoke_runs_a_function_with_an_event_file_on_a_temporary_stack(tmp_path: Path) -> None:
    # Given no dev stack on the configured ports
    # When OtherFunction is invoked with an event file
    completed = _invoke_cli("OtherFunction", {"source": "cli"}, tmp_path, moto_port=free_port("127.0.0.1"))

    # Then its return value is printed as JSON and the logs went to stderr
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["marker"] == "other-app-module"
    assert "a temporary stack" in completed.stderr
    assert "[OtherFunction] REPORT RequestId:" in completed.stderr


def test_invoke_reports_an_unhandled_error_as_lambda_does_and_fails(tmp_path: Path) -> None:
    completed = _invoke_cli("SlowFunction", {"sleep_seconds": 3}, tmp_path, moto_port=free_port("127.0.0.1"))

    assert completed.returncode == 1
    assert json.loads(completed.stdout) == {
        "errorMessage": "Task timed out after 1.00 seconds",
        "errorType": "Sandbox.Timedout",
    }


def test_invoke_uses_a_running_stack_when_one_answers(fixture_stack: RunningStack, tmp_path: Path) -> None:
    # Given a running stack whose moto answers on MOTO_PORT
    moto_port = urlsplit(fixture_stack.moto_url).port
    assert moto_port is not None
    message_id = f"cli-{uuid.uuid4()}"
    record = {
        "messageId": message_id,
        "body": "ok from the cli",
        "attributes": {"ApproximateReceiveCount": "1"},
        "eventSourceARN": fixture_stack.resource("WorkQueue").arn,
    }

    # When the consumer is invoked through the CLI
    completed = _invoke_cli("ConsumerFunction", {"Records": [record]}, tmp_path, moto_port=moto_port)

    # Then it wrote into that stack's table
    assert completed.returncode == 0, completed.stderr
    assert "the running dev stack" in completed.stderr
    assert json.loads(completed.stdout) == {"batchItemFailures": []}
    item = fixture_stack.client("dynamodb").get_item(
        TableName=fixture_stack.resource("StateTable").name,
        Key={"pk": {"S": message_id}, "sk": {"S": "delivery#1"}},
    )
    assert item["Item"]["body"]["S"] == "ok from the cli"
