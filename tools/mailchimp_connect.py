"""The operator's side of /connect/mailchimp (docs/connect.md): a one-time connect link, the
status, and a disconnect. Whoever may read the stack's OAuth secret in AWS is an operator: the
commands sign short-lived, single-use tokens with its ``signing_key``.

    python -m tools.mailchimp_connect link --stack chimpbridge     # prints the connect link
    python -m tools.mailchimp_connect status --stack chimpbridge
    python -m tools.mailchimp_connect disconnect --stack chimpbridge
    python -m tools.mailchimp_connect link --local                 # the `make dev` stack

``make connect-link``, ``make connect-status`` and ``make disconnect`` run them (STACK=<name>,
else the local stack). ``--api-url`` names a custom domain's base URL instead of the stage URL.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

import boto3
import requests

from chimpbridge.logic import connect_tokens
from sandbox.stack.local_config import API_PORT, LOCAL_STACK_NAME, LOOPBACK, MOTO_PORT, TESTING_CREDENTIAL

OPERATOR_TOKEN_SECONDS = 120


@dataclass(frozen=True)
class Target:
    api_url: str
    signing_key: str
    link_ttl_seconds: int = 900


def local_target(api_url: str | None = None, moto_url: str | None = None, secret_id: str | None = None) -> Target:
    secrets = boto3.client(
        "secretsmanager",
        endpoint_url=moto_url or f"http://{LOOPBACK}:{MOTO_PORT.value()}",
        region_name="us-east-1",
        aws_access_key_id=TESTING_CREDENTIAL,
        aws_secret_access_key=TESTING_CREDENTIAL,
    )
    value = secrets.get_secret_value(SecretId=secret_id or f"{LOCAL_STACK_NAME}/MailchimpOAuthSecret")
    return Target(api_url or f"http://{LOOPBACK}:{API_PORT.value()}", _signing_key(value["SecretString"]))


def stack_target(stack: str, api_url: str | None = None) -> Target:
    described = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
    value = boto3.client("secretsmanager").get_secret_value(SecretId=outputs["MailchimpOAuthSecretArn"])
    return Target((api_url or outputs["ApiUrl"]).rstrip("/"), _signing_key(value["SecretString"]))


def _signing_key(secret_string: str) -> str:
    key = json.loads(secret_string).get("signing_key")
    if not isinstance(key, str) or len(key) < 16:
        raise SystemExit("the OAuth secret has no signing_key (docs/connect.md)")
    return key


def connect_link(target: Target) -> str:
    token = connect_tokens.issue(target.signing_key, "link", target.link_ttl_seconds)
    return f"{target.api_url}/connect/mailchimp?link={token}"


def operator_call(target: Target, purpose: str) -> requests.Response:
    """GET status or POST disconnect with a fresh single-use operator token."""
    token = connect_tokens.issue(target.signing_key, purpose, OPERATOR_TOKEN_SECONDS)
    method = "GET" if purpose == "status" else "POST"
    url = f"{target.api_url}/connect/mailchimp/{purpose}"
    return requests.request(method, url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mailchimp_connect", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["link", "status", "disconnect"])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the deployed stack's name (reads its outputs and OAuth secret)")
    where.add_argument("--local", action="store_true", help="the local stack of `make dev`")
    parser.add_argument("--api-url", help="the API's public base URL, if not the stage URL")
    args = parser.parse_args(argv)
    target = local_target(args.api_url) if args.local else stack_target(args.stack, args.api_url)
    if args.command == "link":
        print(connect_link(target))  # noqa: T201 - the command's output
        return 0
    response = operator_call(target, args.command)
    print(json.dumps(response.json(), indent=2))  # noqa: T201
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
