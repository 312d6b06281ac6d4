"""The import's wiring in template.yaml and its state machine: an upload under imports/ starts the
state machine with an event the function accepts, the loop resumes and aborts as designed, and
the function may touch only what it needs. (cfn-lint checks the syntax; these check the meaning.)"""

from __future__ import annotations

import json
import re
from typing import Any

from chimpbridge.models.audience_import import ImportJob
from sandbox.stack.cfn_yaml import load_template
from sandbox.stack.env_file import REPO_ROOT

TEMPLATE = load_template(REPO_ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
STATE_MACHINE = RESOURCES["AudienceImportStateMachine"]["Properties"]
DEFINITION = json.loads((REPO_ROOT / STATE_MACHINE["DefinitionUri"]).read_text())
FUNCTION = RESOURCES["AudienceImportFunction"]["Properties"]


def statements() -> dict[str, dict[str, Any]]:
    (policy,) = FUNCTION["Policies"]
    return {statement["Sid"]: statement for statement in policy["Statement"]}


def test_the_bucket_sends_its_object_events_to_eventbridge() -> None:
    bucket = RESOURCES["ExportBucket"]["Properties"]
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True


def test_only_files_created_under_imports_in_the_bundles_bucket_start_the_state_machine() -> None:
    (event,) = STATE_MACHINE["Events"].values()
    assert event["Type"] == "EventBridgeRule"
    pattern = event["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": "ExportBucket"}]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "imports/"}]
    # an event EventBridge could not deliver waits in a queue that raises an alarm
    assert event["Properties"]["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["ImportTriggerDeadLetterQueue", "Arn"]}
    alarm = RESOURCES["ImportTriggerDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["ImportTriggerDeadLetterQueue", "QueueName"]}


def test_the_sample_upload_event_is_a_job_the_function_accepts() -> None:
    event = json.loads((REPO_ROOT / "events/audience_import/object-created.json").read_text())
    job = ImportJob.from_event(event)
    assert job.object.key == "imports/a1b2c3d4e5/contacts.csv" and job.object.etag


def test_every_placeholder_of_the_definition_is_substituted() -> None:
    placeholders = set(re.findall(r"\$\{(\w+)\}", json.dumps(DEFINITION)))
    assert placeholders == set(STATE_MACHINE["DefinitionSubstitutions"])


def test_the_state_machine_calls_the_function_until_the_job_is_done() -> None:
    states = DEFINITION["States"]
    step, done = states[DEFINITION["StartAt"]], states["Done?"]
    assert step["Next"] == "Done?" and done["Default"] == DEFINITION["StartAt"]
    assert states[done["Choices"][0]["Next"]]["Type"] == "Succeed"
    assert step["Output"] == "{% $states.result.Payload %}"
    assert "$states.context.Execution.Name" in step["Arguments"]["Payload"]


def test_a_busy_audience_and_transient_failures_are_retried_anything_else_aborts() -> None:
    states = DEFINITION["States"]
    step = states[DEFINITION["StartAt"]]
    retried = {error for rule in step["Retry"] for error in rule["ErrorEquals"]}
    assert {"ImportBusy", "ImportInterrupted", "Lambda.TooManyRequestsException"} <= retried
    assert "ImportFailed" not in retried
    (catch,) = step["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"] and catch["Next"] == "Abort"
    assert "'action': 'abort'" in states["Abort"]["Arguments"]["Payload"]
    assert states[states["Abort"]["Next"]]["Type"] == "Fail"
    alarm = RESOURCES["AudienceImportFailedAlarm"]["Properties"]
    dimensions = [metric["MetricStat"]["Metric"]["Dimensions"][0]["Value"] for metric in alarm["Metrics"][:3]]
    assert dimensions == [{"Ref": "AudienceImportStateMachine"}] * 3


def test_the_function_reads_imports_writes_only_reports_and_stages_and_its_own_state() -> None:
    granted = statements()
    assert granted["ReadTheFilesToImport"]["Resource"] == {"Fn::Sub": "${ExportBucket.Arn}/imports/*"}
    assert granted["ReadTheFilesToImport"]["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    written = [resource["Fn::Sub"] for resource in granted["WriteReportsNextToThem"]["Resource"]]
    assert written == ["${ExportBucket.Arn}/imports/*.results.csv.gz", "${ExportBucket.Arn}/imports/*.summary.json"]
    leading = granted["ImportLocksCheckpointsRuns"]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert leading == ["import#*"]
    assert granted["PublishImportFinished"]["Resource"] == {"Fn::GetAtt": ["EventBus", "Arn"]}
    every_action = {action for statement in granted.values() for action in _actions(statement)}
    assert not any(action.endswith("*") for action in every_action)


def test_the_connection_budget_leaves_room_for_signups_by_default() -> None:
    parameter = TEMPLATE["Parameters"]["ImportMaxConnections"]
    assert parameter["Default"] < 10 and parameter["MaxValue"] == 10
    assert FUNCTION["Environment"]["Variables"]["IMPORT_MAX_CONNECTIONS"] == {"Ref": "ImportMaxConnections"}
    assert TEMPLATE["Parameters"]["ImportTrustConsent"]["Default"] == "false"


def test_the_function_is_built_like_the_others() -> None:
    assert RESOURCES["AudienceImportFunction"]["Metadata"] == {"BuildMethod": "makefile"}
    makefile = (REPO_ROOT / "functions/audience_import/Makefile").read_text()
    assert makefile == (REPO_ROOT / "functions/audience_export/Makefile").read_text()


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)
