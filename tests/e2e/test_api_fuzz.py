"""The running local stack against openapi.yaml: generated requests for every documented operation,
as a stranger and as the rightful caller, with data that follows the schemas and data that breaks
them (tests/support/api_fuzz.py). No 5xx, every answer as documented, every error problem JSON,
no stranger let through. A few examples per case here; ``make fuzz`` runs the long campaign."""

from __future__ import annotations

import uuid

import pytest
import requests
import yaml

from sandbox.stack.pytest_plugin import RunningStack, StackFactory
from tests.support.api_fuzz import DOCUMENT, Fuzzer, problem_json_error

# A stack of its own: thousands of signups and hook deliveries stay out of the other tests' queues.
pytestmark = pytest.mark.xdist_group("local-stack-fuzz")
EXAMPLES_PER_CASE = 15


@pytest.fixture(scope="module")
def stack(local_stack_factory: StackFactory) -> RunningStack:
    return local_stack_factory(parameters={"MandrillWebhookRegistrationRevision": "api-fuzz"})


@pytest.fixture(scope="module")
def fuzzer(stack: RunningStack) -> Fuzzer:
    return Fuzzer(stack.api_url)


def test_every_documented_operation_answers_as_documented(fuzzer: Fuzzer):
    # When every operation gets generated requests (seeded: the same ones on every run)
    totals = fuzzer.run(EXAMPLES_PER_CASE, seed=0)

    # Then every operation was reached, and nothing broke the contract
    assert set(totals.per_operation) == {operation.label for operation in fuzzer.operations()}
    findings = "\n".join(finding.line() for finding in totals.distinct())
    assert totals.findings == [], f"{totals.summary()}\n{findings}"
    assert totals.server_errors == 0
    # and the rightful callers got past the checks, to the logic behind them
    for label in ("POST /hooks/{hook}", "POST /webhooks/mailchimp/{token}", "POST /webhooks/mandrill"):
        accepted = sum(
            n for (operation, mode, status), n in totals.outcomes.items() if operation == label and status < 300
        )
        assert accepted > 0, f"no authenticated {label} was accepted"


def test_the_checks_catch_an_answer_outside_the_document(stack: RunningStack):
    # Given a copy of the document that promises /health answers 204
    document = yaml.safe_load(DOCUMENT.read_text())
    document["paths"]["/health"]["get"]["responses"] = {"204": {"description": "nothing"}}
    fuzzer = Fuzzer(stack.api_url, document=document)
    operation = next(op for op in fuzzer.operations() if op.label == "GET /health")

    # When the real stack answers 200
    response = fuzzer.call(operation.Case(), "anonymous", "check")

    # Then it is a schema finding, not a pass
    assert isinstance(response, requests.Response) and response.status_code == 200
    assert [finding.kind for finding in fuzzer.totals.findings] == ["schema"]


def test_an_error_that_is_not_problem_json_is_a_finding():
    class Answer(requests.Response):
        def __init__(self, status: int, content_type: str, body: bytes) -> None:
            super().__init__()
            self.status_code, self._content = status, body
            self.headers["Content-Type"] = content_type

    gateway = Answer(403, "application/json", b'{"type":"urn:chimpbridge:problem:gateway","title":"x","status":"403"}')
    string_status = Answer(403, "application/problem+json", gateway.content)
    good = Answer(
        404, "application/problem+json", b'{"type":"urn:chimpbridge:problem:not-found","title":"x","status":404}'
    )

    assert problem_json_error("POST /subscribe", "POST", gateway)
    assert problem_json_error("POST /subscribe", "POST", string_status)
    assert problem_json_error("POST /subscribe", "POST", good) is None
    assert problem_json_error("HEAD /webhooks/mandrill", "HEAD", gateway) is None


def test_a_json_body_the_document_forbids_must_be_refused(stack: RunningStack):
    # Given a copy of the document that allows only 3-character names in a hook body
    document = yaml.safe_load(DOCUMENT.read_text())
    document["components"]["schemas"]["HookBody"]["properties"]["name"]["properties"]["first"] = {"maxLength": 3}
    fuzzer = Fuzzer(stack.api_url, document=document)
    operation = next(op for op in fuzzer.operations() if op.label == "POST /hooks/{hook}")
    body = {
        "identity_id": str(uuid.uuid4()),
        "email": f"ada-{uuid.uuid4().hex[:8]}@example.com",
        "name": {"first": "Augusta"},
        "flow": {"id": str(uuid.uuid4())},
    }

    # When the real hook accepts Augusta (202)
    response = fuzzer.call(operation.Case(body=body, media_type="application/json"), "authenticated", "check")

    # Then the accepted body is a finding
    assert isinstance(response, requests.Response) and response.status_code == 202
    assert [finding.kind for finding in fuzzer.totals.findings] == ["schema"]
    assert "forbids" in fuzzer.totals.findings[0].message
