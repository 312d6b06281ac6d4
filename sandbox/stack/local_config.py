"""The one place where local values live: ports, template parameter values, secret seeds and the
environment every function gets on top of its template environment.

Change a local parameter here (or for one run with ``CHIMPBRIDGE_PARAMETER_OVERRIDES="Key=Value
Other=Value"``, the same syntax as ``sam deploy --parameter-overrides``).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sandbox.stack.intrinsics import LOCAL_REGION

LOCAL_STACK_NAME = "chimpbridge-local"
LOOPBACK = "127.0.0.1"
# Where the stack listens. 0.0.0.0 lets `sam local` containers on Linux reach it (docs/local-stack.md);
# it also exposes the stack to the network, so loopback stays the default.
BIND_HOST_ENV = "CHIMPBRIDGE_BIND_HOST"


def bind_host() -> str:
    return os.environ.get(BIND_HOST_ENV, "").strip() or LOOPBACK


def advertised_url(host: str, port: int) -> str:
    """The URL to print and to hand to functions: 0.0.0.0 is where we listen, not where to connect."""
    return f"http://{LOOPBACK if host in ('0.0.0.0', '') else host}:{port}"  # noqa: S104 - compared, not bound


TESTING_CREDENTIAL = "testing"  # moto accepts any credentials; these can never reach real AWS


@dataclass(frozen=True)
class PortSetting:
    env_var: str
    default: int

    def value(self) -> int:
        raw = os.environ.get(self.env_var, "").strip()
        return int(raw) if raw else self.default


API_PORT = PortSetting("CHIMPBRIDGE_API_PORT", 3000)
SANDBOX_PORT = PortSetting("SANDBOX_PORT", 4010)
MOTO_PORT = PortSetting("MOTO_PORT", 5000)
PARAMETER_OVERRIDES_ENV = "CHIMPBRIDGE_PARAMETER_OVERRIDES"


def _mailchimp_sandbox() -> ModuleType:
    # Only the constants: they import nothing else, so naming parameters never starts a server.
    import sandbox.mailchimp.constants  # noqa: PLC0415 - optional for templates that do not call Mailchimp

    return sandbox.mailchimp.constants


# Template parameter -> local value. Applied only when the template declares the parameter, so
# the table can name parameters that arrive later. Values are callables when they come from
# the sandbox, which is imported only when a template needs them.
LOCAL_PARAMETER_VALUES: Mapping[str, Callable[[], str]] = {
    "MailchimpListId": lambda: str(_mailchimp_sandbox().DEFAULT_LIST_ID),
    # Locally the example rule is on, so unsubscribes made in the sandbox show up on its queue.
    "UnsubscribeRuleState": lambda: "ENABLED",
}

# Secret logical id -> the JSON the local secret holds (replacing the template's placeholder).
SECRET_SEEDS: Mapping[str, Callable[[], dict[str, Any]]] = {
    "MailchimpSecret": lambda: {"api_key": _mailchimp_sandbox().MARKETING_API_KEY},
    "MandrillSecret": lambda: {"api_key": _mailchimp_sandbox().TRANSACTIONAL_API_KEY},
    "HookKeysSecret": lambda: {"registration_hook_keys": ["local-hook-key"]},
    "SignupFormSecret": lambda: {"form_token_key": "local-signup-form-token-key"},
    # The sandbox's default OAuth app (its redirect URI is set to the local API at start) and the
    # key that signs connect links (tools/mailchimp_connect.py reads it from this secret).
    "MailchimpOAuthSecret": lambda: {
        "client_id": _mailchimp_sandbox().OAUTH_CLIENT_ID,
        "client_secret": _mailchimp_sandbox().OAUTH_CLIENT_SECRET,
        "signing_key": "local-connect-signing-key-0123456789",
    },
    # The token in the local webhook URL, /webhooks/mailchimp/local-webhook-token (events/mailchimp_webhook).
    "MailchimpWebhookSecret": lambda: {"webhook_tokens": ["local-webhook-token"]},
    # The key events/mandrill_webhook/delivery.json is signed with.
    "MandrillWebhookSecret": lambda: {"webhook_keys": ["local-mandrill-webhook-key"]},
}


def parse_parameter_overrides(text: str) -> dict[str, str]:
    """``Key=Value Other="a b"`` (sam's --parameter-overrides syntax) -> dict."""
    overrides: dict[str, str] = {}
    for token in shlex.split(text):
        name, separator, value = token.partition("=")
        if not separator:
            raise ValueError(f"parameter override {token!r} is not Key=Value")
        overrides[name.removeprefix("ParameterKey=")] = value
    return overrides


def local_parameter_values(
    declared_parameters: Mapping[str, Any],
    explicit: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Local values for the template's parameters: the table above, then the environment
    variable, then ``explicit`` (tests), later ones winning."""
    values: dict[str, str] = {}
    for name, make in LOCAL_PARAMETER_VALUES.items():
        if name in declared_parameters:
            try:
                values[name] = make()
            except ImportError:
                continue  # sandbox absent: reported by name if something actually references it
    values.update(parse_parameter_overrides(os.environ.get(PARAMETER_OVERRIDES_ENV, "")))
    values.update(explicit or {})
    return values


def function_overrides(sandbox_url: str, moto_url: str) -> dict[str, str]:
    """Variables every local function gets over its template environment: where Mailchimp and
    AWS are, and credentials that only moto accepts."""
    return {
        "MAILCHIMP_API_URL": f"{sandbox_url}/3.0",
        "MANDRILL_API_URL": f"{sandbox_url}/api/1.3",
        # login.mailchimp.com (OAuth 2): the browser and the connect function both reach the sandbox.
        "MAILCHIMP_LOGIN_URL": sandbox_url,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_REGION": LOCAL_REGION,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_ACCESS_KEY_ID": TESTING_CREDENTIAL,
        "AWS_SECRET_ACCESS_KEY": TESTING_CREDENTIAL,
        "AWS_SESSION_TOKEN": TESTING_CREDENTIAL,
        # What `sam local` sets; Powertools Tracer switches itself off on it (no X-Ray daemon here).
        "AWS_SAM_LOCAL": "true",
        # Queue consumers back off from 1 s instead of 10-15 s: an outage drilled with the
        # sandbox's faults clears in seconds. Same doubling and cap as in AWS.
        "EMAIL_RETRY_BASE_DELAY_SECONDS": "1",
        "SIGNUP_RETRY_BASE_DELAY_SECONDS": "1",
    }
