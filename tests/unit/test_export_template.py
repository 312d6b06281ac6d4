"""The export's wiring in template.yaml and its state machine: what the schedules send is a
job the function accepts, and the state machine loops, waits, resumes and aborts as designed.
(cfn-lint checks the syntax; these check the meaning.)"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chimpbridge import settings
from chimpbridge.logic.export.audience import LAMBDA_MAX_SECONDS, lock_lease_seconds
from chimpbridge.models.export import ExportJob
from sandbox.stack.cfn_yaml import load_template
from sandbox.stack.env_file import REPO_ROOT

TEMPLATE = load_template(REPO_ROOT / "template.yaml")
STATE_MACHINE = TEMPLATE["Resources"]["AudienceExportStateMachine"]["Properties"]
DEFINITION = json.loads((REPO_ROOT / STATE_MACHINE["DefinitionUri"]).read_text())


def schedule_input(event: str, audiences: str) -> dict[str, Any]:
    """The Input a schedule sends, with parameters and Scheduler's context attribute filled in."""
    template, variables = STATE_MACHINE["Events"][event]["Properties"]["Input"]["Fn::Sub"]
    assert "Audiences" in variables
    text = template.replace("${Audiences}", audiences).replace("${ExportFormat}", "csv")
    text = text.replace("<aws.scheduler.scheduled-time>", "2025-01-06T02:00:00Z")
    return dict(json.loads(text))


@pytest.mark.parametrize(("event", "mode"), [("IncrementalExport", "incremental"), ("FullExport", "full")])
def test_each_schedule_sends_a_job_the_function_accepts(event: str, mode: str) -> None:
    # When a schedule's input is rendered for two audiences (the Join of ExportAudiences)
    job = ExportJob.model_validate(schedule_input(event, 'a1b2c3d4e5", "f6e5d4c3b2'))

    # Then it is a valid job of that mode, naming the tick
    assert job.mode == mode and job.audiences == ["a1b2c3d4e5", "f6e5d4c3b2"]
    assert job.scheduled_time is not None


def test_the_schedules_target_the_state_machine_with_default_times() -> None:
    events = STATE_MACHINE["Events"]
    assert {event["Type"] for event in events.values()} == {"ScheduleV2"}
    assert TEMPLATE["Parameters"]["IncrementalExportSchedule"]["Default"] == "cron(0 2 * * ? *)"
    assert TEMPLATE["Parameters"]["FullExportSchedule"]["Default"] == "cron(0 3 ? * SUN *)"


def test_every_placeholder_of_the_definition_is_substituted() -> None:
    placeholders = set(re.findall(r"\$\{(\w+)\}", json.dumps(DEFINITION)))
    assert placeholders == set(STATE_MACHINE["DefinitionSubstitutions"])


def test_the_state_machine_calls_the_function_until_the_job_is_done() -> None:
    states = DEFINITION["States"]
    export, done = states[DEFINITION["StartAt"]], states["Done?"]
    assert export["Next"] == "Done?"
    assert done["Default"] == DEFINITION["StartAt"]
    assert states[done["Choices"][0]["Next"]]["Type"] == "Succeed"
    # the function's result is the next call's input, with the execution name (the lock owner)
    assert export["Output"] == "{% $states.result.Payload %}"
    assert "$states.context.Execution.Name" in export["Arguments"]["Payload"]


def test_a_busy_stream_and_transient_failures_are_retried_not_aborted() -> None:
    retried = {error for rule in DEFINITION["States"]["Export"]["Retry"] for error in rule["ErrorEquals"]}
    assert {"ExportBusy", "ExportInterrupted", "Lambda.TooManyRequestsException"} <= retried
    assert "ExportFailed" not in retried


def test_anything_else_aborts_the_run_then_fails_the_execution() -> None:
    states = DEFINITION["States"]
    (catch,) = states["Export"]["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"] and catch["Next"] == "Abort"
    assert "'action': 'abort'" in states["Abort"]["Arguments"]["Payload"]
    assert states[states["Abort"]["Next"]]["Type"] == "Fail"
    assert states[states["Abort"]["Catch"][0]["Next"]]["Type"] == "Fail"


def deployed_value(value: Any) -> str:
    """An environment value as deployed with default parameters (resource names are placeholders)."""
    if isinstance(value, dict) and value.get("Ref") in TEMPLATE["Parameters"]:
        return str(TEMPLATE["Parameters"][value["Ref"]]["Default"])
    return value if isinstance(value, str) else "a-resource-name"


def longest_wait_seconds(rule: dict[str, Any]) -> float:
    """The longest a Retry rule waits before its last attempt (JitterStrategy only shortens it)."""
    wait = rule.get("IntervalSeconds", 1) * rule.get("BackoffRate", 2.0) ** (rule.get("MaxAttempts", 3) - 1)
    return float(min(wait, rule.get("MaxDelaySeconds", wait)))


def test_a_runs_lock_lease_covers_the_function_timeout_and_the_longest_retry_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the function as the template configures it, and the state machine's Retry rules
    function = TEMPLATE["Resources"]["AudienceExportFunction"]["Properties"]
    for name, value in function["Environment"]["Variables"].items():
        monkeypatch.setenv(name, deployed_value(value))
    settings.clear()
    longest_wait = max(longest_wait_seconds(rule) for rule in DEFINITION["States"]["Export"]["Retry"])

    # When a lock is taken outside an invocation (no deadline known: Lambda's longest)
    lease = lock_lease_seconds(settings.load(settings.ExportSettings))
    settings.clear()

    # Then it outlives an invocation as long as the template allows plus the longest wait
    assert function["Timeout"] <= LAMBDA_MAX_SECONDS
    assert lease > function["Timeout"] + longest_wait
