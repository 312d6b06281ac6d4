"""Fuzzing the running local stack from openapi.yaml with schemathesis: generated requests for every
documented operation, each answer checked against the document.

Each operation is fuzzed the way a stranger calls it (``anonymous``: no credentials, or made-up
ones) and, where the local stack's keys let us, the way its rightful caller does
(``authenticated``: the hook key, the webhook token, a Mandrill signature over the very body
that is sent, a fresh operator token, a valid form token). Both with data that follows the
schemas (``positive``) and data that breaks them (``negative``).

Every answer must: not be a 5xx; conform to the document (status documented, content type,
body schema, headers: schemathesis' own checks); be problem JSON with a numeric ``status`` when
it is an error (the connect pages and HEAD excepted, as the document says); and, anonymous on
a protected route, be a refusal (401/404, or a refusal of the body's framing before the
signature can be checked).

Used by tests/e2e/test_api_fuzz.py (a few examples per operation) and by ``make fuzz``
(``python -m tests.support.api_fuzz``: a long campaign on a stack of its own, totals printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chimpbridge.logic import connect_tokens, signup_guard
from chimpbridge.logic.mandrill_webhook_auth import signature as mandrill_signature
from sandbox.stack.env_file import REPO_ROOT
from sandbox.stack.local_config import SECRET_SEEDS

DOCUMENT = REPO_ROOT / "openapi.yaml"
PROBLEM_PREFIX = "urn:chimpbridge:problem:"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Pages for the operator's browser: their errors are HTML by design (openapi.yaml says so).
HTML_ROUTES = frozenset({"GET /connect/mailchimp", "GET /connect/mailchimp/callback"})
# Operations a stranger must not get past, and what a stranger may be answered there.
REFUSALS = {401, 404}
PROTECTED: dict[str, frozenset[int]] = {
    "POST /hooks/{hook}": frozenset(REFUSALS),
    "GET /webhooks/mailchimp/{token}": frozenset(REFUSALS),
    "HEAD /webhooks/mailchimp/{token}": frozenset(REFUSALS),
    "POST /webhooks/mailchimp/{token}": frozenset(REFUSALS),
    # The signature covers the form's fields, so the form's framing (size, media type, encoding)
    # is read before it; nothing else is.
    "POST /webhooks/mandrill": frozenset(REFUSALS | {413, 415, 422}),
    "GET /connect/mailchimp/status": frozenset(REFUSALS),
    "POST /connect/mailchimp/disconnect": frozenset(REFUSALS),
}
# Not fuzzed with valid credentials: it would disconnect the stack from Mailchimp mid-run.
NOT_AUTHENTICATED = frozenset({"POST /connect/mailchimp/disconnect"})
GENERATION_MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


@dataclass(frozen=True)
class LocalKeys:
    """The local stack's credentials (sandbox/stack/local_config.py seeds its secrets with them)."""

    hook_key: str = SECRET_SEEDS["HookKeysSecret"]()["registration_hook_keys"][0]
    webhook_token: str = SECRET_SEEDS["MailchimpWebhookSecret"]()["webhook_tokens"][0]
    mandrill_key: str = SECRET_SEEDS["MandrillWebhookSecret"]()["webhook_keys"][0]
    connect_key: str = SECRET_SEEDS["MailchimpOAuthSecret"]()["signing_key"]
    form_key: str = SECRET_SEEDS["SignupFormSecret"]()["form_token_key"]


@dataclass(frozen=True)
class Finding:
    kind: str  # "5xx", "schema", "problem", "refusal"
    operation: str
    mode: str
    status: int
    message: str
    curl: str

    def line(self) -> str:
        first = self.message.strip().splitlines()[0] if self.message.strip() else ""
        return f"[{self.kind}] {self.operation} ({self.mode}) -> {self.status}: {first[:300]}\n    {self.curl[:600]}"


@dataclass
class Totals:
    requests: int = 0
    unsendable: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    per_operation: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # (operation, mode, status)
    findings: list[Finding] = field(default_factory=list)
    no_cases: list[str] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for finding in self.findings if finding.kind == kind)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def distinct(self) -> list[Finding]:
        """One finding per (kind, operation, mode, status, first line)."""
        seen: dict[tuple[str, str, str, int, str], Finding] = {}
        for finding in self.findings:
            first = finding.message.strip().splitlines()[0] if finding.message.strip() else ""
            seen.setdefault((finding.kind, finding.operation, finding.mode, finding.status, first), finding)
        return list(seen.values())

    def summary(self) -> str:
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        return (
            f"requests {self.requests} (unsendable, skipped: {self.unsendable}); 5xx {self.server_errors}; "
            f"schema violations {self.count('schema')}; errors not problem JSON {self.count('problem')}; "
            f"strangers let through {self.count('refusal')}\n  statuses: {statuses}"
        )


def load_schema(base_url: str, document: dict[str, Any] | None = None) -> Any:
    """openapi.yaml (or ``document``, a changed copy) with requests going to ``base_url``."""
    schema = (
        schemathesis.openapi.from_path(str(DOCUMENT)) if document is None else schemathesis.openapi.from_dict(document)
    )
    schema.config.update(base_url=base_url)
    return schema


class Fuzzer:
    """Sends generated requests of each operation to ``base_url`` and records what breaks."""

    def __init__(self, base_url: str, keys: LocalKeys | None = None, document: dict[str, Any] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.keys = keys or LocalKeys()
        self.schema = load_schema(self.base_url, document)
        self.session = requests.Session()
        self.totals = Totals()
        self._registry: Any = None

    def operations(self) -> Iterator[Any]:
        for result in self.schema.get_all_operations():
            yield result.ok()

    def run(
        self,
        examples: int,
        *,
        only: Callable[[str], bool] = lambda label: True,
        seed: int | None = None,
        progress: Callable[[str], None] = lambda line: None,
    ) -> Totals:
        """``examples`` generated cases per (operation, caller, generation mode)."""
        for operation in self.operations():
            if not only(operation.label):
                continue
            callers = ["anonymous"]
            if operation.label in PROTECTED and operation.label not in NOT_AUTHENTICATED:
                callers.append("authenticated")
            elif operation.label in ("POST /subscribe", "GET /connect/mailchimp", "GET /connect/mailchimp/callback"):
                callers.append("authenticated")  # a valid form token, link, state
            for caller in callers:
                for generation in GENERATION_MODES:
                    self._fuzz(operation, caller, generation, examples, seed)
            progress(f"  {operation.label:40} {self.totals.per_operation[operation.label]:6} requests")
        return self.totals

    def _fuzz(self, operation: Any, caller: str, generation: Any, examples: int, seed: int | None) -> None:
        generated = operation.as_strategy(generation_mode=generation)
        documented = self.schema.get_strategies_from_examples(operation)
        strategy = generated
        if generation == schemathesis.GenerationMode.POSITIVE and documented:
            # One case in five starts from the document's examples (a real delivery that gets
            # published or queued), so the paths behind the checks are fuzzed too.
            from_examples = st.one_of(documented)
            strategy = st.integers(0, 4).flatmap(lambda draw: from_examples if draw == 4 else generated)
        mode = f"{caller}, {generation.value}"

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=seed is not None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
        )
        @given(case=strategy)
        def one(case: Any) -> None:
            self.call(case, caller, mode)

        try:
            one()
        except Unsatisfiable:
            self.totals.no_cases.append(f"{operation.label} ({mode})")  # nothing to break: no parameters

    def call(self, case: Any, caller: str, mode: str) -> requests.Response | None:
        label = case.operation.label
        if caller == "authenticated":
            self._authenticate(case)
        else:
            self._anonymise(case)
        try:
            kwargs = case.as_transport_kwargs(base_url=self.base_url)
            kwargs = self._sign(label, kwargs) if caller == "authenticated" else kwargs
            response = self.session.request(**kwargs, timeout=60, allow_redirects=False)
        except (ValueError, UnicodeError, requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL):
            self.totals.unsendable += 1  # a header or URL no HTTP client can send
            return None
        self.totals.requests += 1
        self.totals.statuses[response.status_code] += 1
        self.totals.per_operation[label] += 1
        self.totals.outcomes[label, mode, response.status_code] += 1
        self._check(case, response, caller, mode, kwargs)
        return response

    # ---------------------------------------------------------------- checks
    def _check(self, case: Any, response: requests.Response, caller: str, mode: str, kwargs: dict[str, Any]) -> None:
        label = case.operation.label
        curl = _curl(kwargs)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as failures:
            for failure in failures.exceptions:
                kind = "5xx" if response.status_code >= 500 else "schema"
                self.totals.findings.append(
                    Finding(kind, label, mode, response.status_code, f"{failure.title}: {failure.message}", curl)
                )
        refused = self._refused_if_invalid(case, response, caller)
        if refused:
            self.totals.findings.append(Finding("schema", label, mode, response.status_code, refused, curl))
        problem = problem_json_error(label, case.method, response)
        if problem:
            self.totals.findings.append(Finding("problem", label, mode, response.status_code, problem, curl))
        allowed = PROTECTED.get(label)
        if caller == "anonymous" and allowed is not None and response.status_code not in allowed:
            message = f"a stranger got {response.status_code}, not one of {sorted(allowed)}"
            self.totals.findings.append(Finding("refusal", label, mode, response.status_code, message, curl))

    def _refused_if_invalid(self, case: Any, response: requests.Response, caller: str) -> str | None:
        """A JSON body the document forbids must be refused (4xx); form posts are read leniently
        on purpose (Mailchimp's embedded forms, webhook senders), as the document says."""
        if case.media_type != "application/json" or response.status_code >= 400 or not hasattr(case.body, "keys"):
            return None
        content = case.operation.definition.raw.get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            return None
        body = _without_nulls(case.body)  # a null member counts as not sent (documented)
        agent = (case.headers or {}).get("User-Agent", "")
        if case.operation.label == "POST /subscribe" and _looks_automated(body, caller, agent):
            return None  # a bot: answered as a person is, nothing read further (documented)
        errors = [error.message for error in self.validator(schema).iter_errors(body)]
        return f"a body the document forbids was accepted: {errors[0][:200]}" if errors else None

    def validator(self, schema: dict[str, Any]) -> Any:
        """JSON Schema 2020-12 (OpenAPI 3.1's dialect) with the document's #/components resolved."""
        import jsonschema  # noqa: PLC0415
        from referencing import Registry, Resource  # noqa: PLC0415
        from referencing.jsonschema import DRAFT202012  # noqa: PLC0415

        if self._registry is None:
            document = Resource.from_contents(self.schema.raw_schema, default_specification=DRAFT202012)
            self._registry = Registry().with_resource("urn:openapi", document)
        rooted = json.loads(json.dumps(schema).replace('"#/components/', '"urn:openapi#/components/'))
        checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
        return jsonschema.Draft202012Validator(rooted, registry=self._registry, format_checker=checker)

    # ---------------------------------------------------------------- credentials
    def _anonymise(self, case: Any) -> None:
        """A made-up credential stays (strangers send those); a generated one that happens to be
        right (the document's example token) is spoiled."""
        if case.path_parameters and case.path_parameters.get("token") == self.keys.webhook_token:
            case.path_parameters["token"] += "x"

    def _authenticate(self, case: Any) -> None:
        label = case.operation.label
        headers = case.headers if case.headers is not None else {}
        case.headers = headers
        if label == "POST /hooks/{hook}":
            headers["Authorization"] = self.keys.hook_key
            case.path_parameters["hook"] = "registration"
        elif label.endswith("/webhooks/mailchimp/{token}"):
            case.path_parameters["token"] = self.keys.webhook_token
        elif label == "GET /connect/mailchimp/status":
            headers["Authorization"] = "Bearer " + connect_tokens.issue(self.keys.connect_key, "status", 300)
        elif label == "GET /connect/mailchimp":
            case.query = {**(case.query or {}), "link": connect_tokens.issue(self.keys.connect_key, "link", 300)}
        elif label == "GET /connect/mailchimp/callback":
            browser = uuid.uuid4().hex
            binding = connect_tokens.browser_binding(browser)
            state = connect_tokens.issue(self.keys.connect_key, "state", 300, binding=binding)
            case.query = {**(case.query or {}), "state": state}
            headers["Cookie"] = f"chimpbridge_connect={browser}"
        elif label == "POST /subscribe" and isinstance(case.body, dict):
            issued = int(time.time()) - 10  # a form filled in 10 s ago
            case.body["_form_token"] = f"{issued}.{signup_guard._signature(self.keys.form_key.encode(), issued)}"

    def _sign(self, label: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Mandrill signs the URL it posts to and the form's fields: sign what is really sent."""
        if label != "POST /webhooks/mandrill":
            return kwargs
        data = kwargs.get("data")
        if isinstance(data, dict):
            data = urlencode(data, doseq=True)
        if isinstance(data, str | bytes):
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
            fields = dict(parse_qsl(text, keep_blank_values=True))
            kwargs = {**kwargs, "data": data}
            url = f"{self.base_url}/webhooks/mandrill"
            kwargs["headers"] = {
                **(kwargs.get("headers") or {}),
                "X-Mandrill-Signature": mandrill_signature(self.keys.mandrill_key, url, fields),
            }
        return kwargs


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {name: _without_nulls(member) for name, member in value.items() if member is not None}
    return value


def _looks_automated(body: dict[str, Any], caller: str, user_agent: str) -> bool:
    """A filled honeypot, a crawler's user agent, or (from a stranger, who has no valid one) any
    form token at all: what logic/signup_guard.py answers as it answers a person."""
    honeypot = body.get("_honeypot") or body.get("honeypot")
    token = body.get("_form_token", body.get("form_token"))
    crawler = signup_guard.BOT_USER_AGENT.search(user_agent.strip()) is not None
    return bool(honeypot) or crawler or (caller == "anonymous" and token is not None)


def problem_json_error(label: str, method: str, response: requests.Response) -> str | None:
    """Why an error answer is not RFC 7807 problem JSON with a numeric status, or None."""
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    if response.status_code < 400 or method.upper() == "HEAD" or (label in HTML_ROUTES and media_type == "text/html"):
        return None
    if media_type != "application/problem+json":
        return (
            f"an error answered {media_type or 'no content type'}, not application/problem+json: {response.text[:200]}"
        )
    try:
        body = response.json()
    except ValueError:
        return f"problem JSON that is not JSON: {response.text[:200]}"
    if not isinstance(body, dict) or body.get("status") != response.status_code or isinstance(body.get("status"), bool):
        return (
            f"problem status {body.get('status') if isinstance(body, dict) else body!r} for HTTP {response.status_code}"
        )
    if not str(body.get("type", "")).startswith(PROBLEM_PREFIX) or not isinstance(body.get("title"), str):
        return f"problem without our type or a title: {response.text[:200]}"
    return None


def _curl(kwargs: dict[str, Any]) -> str:
    parts = ["curl -i", "-X", str(kwargs.get("method", "GET"))]
    parts += [f"-H {json.dumps(f'{name}: {value}')}" for name, value in (kwargs.get("headers") or {}).items()]
    params = kwargs.get("params")
    url = str(kwargs.get("url", "")) + (("?" + urlencode(params, doseq=True)) if params else "")
    body = kwargs.get("data")
    if kwargs.get("json") is not None:
        body = json.dumps(kwargs["json"])
    elif isinstance(body, dict):
        body = urlencode(body, doseq=True)
    if body:
        parts.append(f"--data-binary {json.dumps(body if isinstance(body, str) else body.decode('utf-8', 'replace'))}")
    parts.append(json.dumps(url))
    return " ".join(parts)


# ---------------------------------------------------------------- make fuzz
def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fuzz the local stack from openapi.yaml (make fuzz).")
    parser.add_argument("--examples", type=int, default=600, help="cases per (operation, caller, generation mode)")
    parser.add_argument("--api-url", help="a running stack (make dev) instead of a fresh one on free ports")
    parser.add_argument("--show", type=int, default=30, help="distinct findings to print")
    args = parser.parse_args(argv)

    stack = None
    base_url = args.api_url
    if base_url is None:
        from sandbox.stack.stack import LocalStack  # noqa: PLC0415 - only when we start one

        stack = LocalStack(
            REPO_ROOT / "template.yaml",
            api_port=0,
            sandbox_port=0,
            moto_port=0,
            moto_in_child_process=True,
            log_sink=lambda source, line: None,
        ).start()
        base_url = str(stack.api_url)
    started = time.monotonic()
    try:
        fuzzer = Fuzzer(base_url)
        say(f"fuzzing {base_url} from openapi.yaml, {args.examples} examples per operation, caller and mode")
        totals = fuzzer.run(args.examples, progress=say)
    finally:
        if stack is not None:
            stack.stop()
    elapsed = time.monotonic() - started
    say(f"fuzzed {base_url} from openapi.yaml in {elapsed:.0f} s, {args.examples} examples per case")
    say(totals.summary())
    distinct = totals.distinct()
    for finding in distinct[: args.show]:
        say(finding.line())
    if len(distinct) > args.show:
        say(f"... and {len(distinct) - args.show} more distinct findings")
    return 1 if totals.findings else 0


if __name__ == "__main__":
    sys.exit(main())
