"""The registration hook's and email sender's wiring in template.yaml: the sender's numbers
let every send of a batch wait for its whole answer, each function reaches only its own
idempotency records, the default EmailFlows lives in one place, and the docs name the key the
template generates. (cfn-lint checks the syntax; these check the meaning.)"""

from __future__ import annotations

import math
from typing import Any

import pytest

from chimpbridge import settings
from chimpbridge.deadline import DEADLINE_MARGIN_SECONDS
from chimpbridge.logic import email_sender, registration_hook
from sandbox.stack.cfn_yaml import load_template
from sandbox.stack.env_file import REPO_ROOT

TEMPLATE = load_template(REPO_ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
SENDER = RESOURCES["EmailSenderFunction"]["Properties"]
# What an invocation spends before its first send: a cold start, the Mandrill key, the
# idempotency record.
STARTUP_SECONDS = 5.0


def literal_environment(function: dict[str, Any]) -> dict[str, str]:
    variables = function["Environment"]["Variables"]
    return {name: value for name, value in variables.items() if isinstance(value, str)}


def sender_http() -> settings.HttpSettings:
    return settings.parse(settings.HttpSettings, literal_environment(SENDER))


def idempotency_condition(function: str) -> list[str]:
    statements = RESOURCES[function]["Properties"]["Policies"][0]["Statement"]
    (statement,) = [
        s for s in statements if "dynamodb:PutItem" in s["Action"] and "IdempotencyTable" in str(s["Resource"])
    ]
    return list(statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])


@pytest.fixture(autouse=True)
def fresh_settings():
    settings.clear()
    yield
    settings.clear()


def test_a_batch_is_one_round_of_sends():
    environment = literal_environment(SENDER)
    batch_size = SENDER["Events"]["EmailQueue"]["Properties"]["BatchSize"]
    concurrency = int(environment["EMAIL_SEND_CONCURRENCY"])

    # No record waits for a first round to finish, so none starts late in the invocation
    assert math.ceil(batch_size / concurrency) == 1
    assert int(environment["MAILCHIMP_MAX_CONNECTIONS"]) >= concurrency


def test_the_retry_budget_holds_a_whole_wait_for_the_answer():
    http = sender_http()

    assert http.retry_budget >= http.connect_timeout + http.read_timeout


def test_every_send_of_a_batch_starts_with_its_whole_wait_ahead():
    http = sender_http()
    timeout = SENDER["Timeout"]

    # The first (and only) round starts with time for connect + read timeout + margin ...
    assert timeout >= STARTUP_SECONDS + email_sender.seconds_needed_for_a_send(http)
    # ... and its retries end before the transport's margin before the deadline
    assert timeout >= STARTUP_SECONDS + http.retry_budget + DEADLINE_MARGIN_SECONDS


def test_the_email_queue_hides_a_record_six_times_the_senders_timeout():
    assert RESOURCES["EmailQueue"]["Properties"]["VisibilityTimeout"] == 6 * SENDER["Timeout"]


@pytest.mark.parametrize(
    ("function", "prefix"),
    [
        ("RegistrationHookFunction", registration_hook.IDEMPOTENCY_KEY_PREFIX),
        ("EmailSenderFunction", email_sender.IDEMPOTENCY_KEY_PREFIX),
    ],
)
def test_each_function_reaches_only_its_own_idempotency_records(function, prefix):
    assert idempotency_condition(function) == [f"{prefix}#*"]


def test_the_email_flows_default_is_written_once_in_the_code(monkeypatch):
    # Given the template's default EmailFlows, as the functions get it
    default = TEMPLATE["Parameters"]["EmailFlows"]["Default"]
    monkeypatch.setenv("EMAIL_FLOWS", default)

    # Then it is empty, and empty means the code's default: the welcome email for registrations
    assert default == ""
    flows = settings.load(settings.EmailFlowSettings).flows
    assert list(flows) == ["registration"] and flows["registration"].template == "welcome"


@pytest.mark.parametrize("doc", ["docs/registration-emails.md", "examples/ory/README.md", "examples/ory/kratos.yml"])
def test_the_docs_read_the_key_the_template_generates(doc):
    generated = RESOURCES["HookKeysSecret"]["Properties"]["GenerateSecretString"]["GenerateStringKey"]

    text = (REPO_ROOT / doc).read_text()

    assert f"| jq -r .SecretString | jq -r .{generated}" in text
