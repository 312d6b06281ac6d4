"""State machines started by EventBridge rules, locally: the upload of a file under imports/
reaches the import function as it would in AWS (S3 -> EventBridge -> Step Functions -> Lambda).

Not a state-machine interpreter: only the contract the template's state machines keep (see
:mod:`sandbox.stack.loop`): the function is called with the event, then with its own result
while the result says ``{"done": false}``, each call with the execution's name; an error the
definition retries is retried after a short wait, a few times; any other error (or one retried
too often) calls the function once more with ``action: abort`` and the error, as the
definition's catch does.

How the event gets here: buckets whose template turns EventBridge notifications on get them on
moto, which then delivers S3 events through the rules of the default bus. Each
``EventBridgeRule`` event of a state machine becomes such a rule on moto, with the same
pattern, targeting a local queue; a thread drains it and runs the loop above.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.stack.loop import MAX_INVOCATIONS, wants_another_invocation
from sandbox.stack.workers import FunctionError, LogSink

STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine",)
RETRY_WAIT_SECONDS = 2.0
MAX_RETRIES = 5


@dataclass(frozen=True)
class RuleTrigger:
    """One EventBridgeRule event of a state machine, as the local stack runs it."""

    state_machine_id: str
    event_id: str
    pattern: dict[str, Any]
    function_id: str
    retried_errors: frozenset[str]

    @property
    def name(self) -> str:
        return f"{self.state_machine_id}-{self.event_id}"


def rule_triggers(template: Any, resolver: Any, root: Path) -> list[RuleTrigger]:
    """The template's state machines started by EventBridge rules, with the function each calls
    (the one its DefinitionSubstitutions name) and the errors its definition retries."""
    triggers: list[RuleTrigger] = []
    for logical_id, resource in template.resources.items():
        if resource.get("Type") not in STATE_MACHINE_TYPES or not resolver.resource_is_created(logical_id):
            continue
        properties = resource.get("Properties") or {}
        functions = [
            value["Fn::GetAtt"][0]
            for value in (properties.get("DefinitionSubstitutions") or {}).values()
            if isinstance(value, dict) and isinstance(value.get("Fn::GetAtt"), list)
        ]
        if len(functions) != 1:
            continue
        retried = _retried_errors(root / str(properties.get("DefinitionUri", "")))
        for event_id, event in (properties.get("Events") or {}).items():
            if event.get("Type") != "EventBridgeRule":
                continue
            pattern = resolver.resolve((event.get("Properties") or {}).get("Pattern") or {})
            triggers.append(RuleTrigger(logical_id, event_id, dict(pattern), functions[0], retried))
    return triggers


def _retried_errors(definition: Path) -> frozenset[str]:
    try:
        document = json.loads(definition.read_text())
    except (OSError, ValueError):
        return frozenset()
    start = document.get("States", {}).get(document.get("StartAt"), {})
    return frozenset(error for rule in start.get("Retry", []) for error in rule.get("ErrorEquals", []))


class RuleRunner:
    """Creates the trigger's rule and queue on moto and runs an execution per event."""

    def __init__(
        self,
        trigger: RuleTrigger,
        *,
        stack_name: str,
        client: Callable[[str], Any],
        invoke: Callable[[str, Any], Any],
        log_sink: LogSink,
    ) -> None:
        self.trigger = trigger
        self.client = client
        self.invoke = invoke
        self.log_sink = log_sink
        self.queue_name = re.sub(r"[^A-Za-z0-9_-]", "-", f"{stack_name}-{trigger.name}")[:80]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rule-{trigger.name}", daemon=True)
        self.queue_url = ""

    def start(self) -> RuleRunner:
        sqs, events = self.client("sqs"), self.client("events")
        self.queue_url = sqs.create_queue(QueueName=self.queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=self.queue_name, EventPattern=json.dumps(self.trigger.pattern), State="ENABLED")
        events.put_targets(Rule=self.queue_name, Targets=[{"Id": "state-machine", "Arn": arn}])
        self._thread.start()
        return self

    def request_stop(self) -> None:
        self._stopping.set()

    def join(self) -> None:
        self._thread.join(timeout=30)

    def _run(self) -> None:
        sqs = self.client("sqs")
        while not self._stopping.is_set():
            try:
                messages = sqs.receive_message(QueueUrl=self.queue_url, WaitTimeSeconds=1).get("Messages", [])
            except Exception as error:  # noqa: BLE001 - moto stopping under us: end quietly
                if not self._stopping.is_set():
                    self.log_sink(self.trigger.name, f"ERROR receiving: {error}")
                return
            for message in messages:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                self.execute(json.loads(message["Body"]))

    def execute(self, event: Any) -> Any:
        """One execution: the loop, retries and abort of the definition; returns the last result."""
        execution = uuid.uuid4().hex
        name, function_id = self.trigger.name, self.trigger.function_id
        self.log_sink(name, f"execution {execution} started by {event.get('detail-type', 'an event')}")
        current = event
        retries = 0
        for _ in range(MAX_INVOCATIONS):
            try:
                result = self.invoke(function_id, {**current, "execution": execution})
            except FunctionError as error:
                kind = str((error.result.payload or {}).get("errorType"))
                if kind in self.trigger.retried_errors and retries < MAX_RETRIES and not self._stopping.is_set():
                    retries += 1
                    self.log_sink(name, f"{kind}: retrying in {RETRY_WAIT_SECONDS:.0f} s")
                    time.sleep(RETRY_WAIT_SECONDS)
                    continue
                return self._abort(current, execution, error)
            retries = 0
            if not wants_another_invocation(result):
                self.log_sink(name, f"execution {execution} succeeded")
                return result
            current = result
        raise RuntimeError(f"{name}: still not done after {MAX_INVOCATIONS} invocations")

    def _abort(self, current: Any, execution: str, error: FunctionError) -> Any:
        payload = error.result.payload or {}
        failure = {"Error": payload.get("errorType"), "Cause": json.dumps(payload)}
        self.log_sink(self.trigger.name, f"execution {execution} failed ({failure['Error']}); aborting the run")
        try:
            return self.invoke(
                self.trigger.function_id, {**current, "action": "abort", "execution": execution, "error": failure}
            )
        except FunctionError as abort_error:
            self.log_sink(self.trigger.name, f"abort failed: {abort_error}")
            return None
