"""template.yaml wires the queue consumers' dead-letter queues: each consumer is told its own
DLQ and may only send messages to it (no other queue, no other SQS action on it)."""

from __future__ import annotations

import pytest

from sandbox.stack.cfn_yaml import load_template
from sandbox.stack.env_file import REPO_ROOT

TEMPLATE = load_template(REPO_ROOT / "template.yaml")
CONSUMERS = [
    ("SignupWorkerFunction", "SIGNUP_DEAD_LETTER_QUEUE_URL", "SignupDeadLetterQueue"),
    ("EmailSenderFunction", "EMAIL_DEAD_LETTER_QUEUE_URL", "EmailDeadLetterQueue"),
]


def statements(function: str) -> list[dict]:
    policies = TEMPLATE["Resources"][function]["Properties"]["Policies"]
    return [statement for policy in policies if isinstance(policy, dict) for statement in policy.get("Statement", [])]


@pytest.mark.parametrize(("function", "variable", "queue"), CONSUMERS)
def test_a_consumer_is_told_its_own_dead_letter_queue(function, variable, queue):
    environment = TEMPLATE["Resources"][function]["Properties"]["Environment"]["Variables"]

    assert environment[variable] == {"Ref": queue}


@pytest.mark.parametrize(("function", "variable", "queue"), CONSUMERS)
def test_a_consumer_may_only_send_to_its_own_dead_letter_queue(function, variable, queue):
    sending = [statement for statement in statements(function) if "sqs:SendMessage" in str(statement["Action"])]

    assert sending == [
        {
            "Sid": "DeadLetterRefusals",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": [queue, "Arn"]},
        }
    ]
    touching_the_dlq = [statement for statement in statements(function) if queue in str(statement["Resource"])]
    assert touching_the_dlq == sending
