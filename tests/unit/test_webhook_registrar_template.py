"""Custom::MailchimpWebhooks in template.yaml: the token never travels through CloudFormation,
the stack cannot wait on the function, the function reads only its two secrets, and the sample
events ask for what the template would. (cfn-lint checks the syntax; these check the meaning.)"""

from __future__ import annotations

import json
from typing import Any

from chimpbridge import settings
from chimpbridge.custom_resource import stable_id
from chimpbridge.models.webhook_registration import WebhookRegistration
from chimpbridge.secrets import MailchimpCredentials
from sandbox.stack.cfn_yaml import load_template
from sandbox.stack.env_file import REPO_ROOT
from tests.support.functions import event

TEMPLATE = load_template(REPO_ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
REGISTRAR = RESOURCES["MailchimpWebhookRegistrarFunction"]
WEBHOOKS = RESOURCES["MailchimpWebhooks"]


def test_the_token_is_read_by_the_function_never_passed_through_cloudformation():
    properties = json.dumps(WEBHOOKS["Properties"])
    outputs = json.dumps([output["Value"] for output in TEMPLATE["Outputs"].values()])

    # Only the secret's ARN and the URL up to the token: no dynamic reference, no token member
    assert "resolve:secretsmanager" not in properties + outputs
    assert "initial_token" not in properties + outputs and "webhook_tokens" not in properties + outputs
    assert WEBHOOKS["Properties"]["Url"]["Fn::If"][1]["Fn::Sub"].endswith("/webhooks/mailchimp/")
    assert WEBHOOKS["Properties"]["Url"]["Fn::If"][2]["Fn::Sub"].endswith("/webhooks/mailchimp/")


def test_the_registration_exists_exactly_when_it_is_turned_on():
    assert TEMPLATE["Conditions"]["RegisterWebhooks"] == {"Fn::Equals": [{"Ref": "RegisterMailchimpWebhooks"}, "true"]}
    for name in ("MailchimpWebhookRegistrarFunction", "MailchimpWebhookRegistrarFunctionLogGroup", "MailchimpWebhooks"):
        assert RESOURCES[name]["Condition"] == "RegisterWebhooks"


def test_cloudformation_never_waits_longer_than_the_function_can_run():
    # crhelper answers before the function's timeout; ServiceTimeout bounds the wait regardless
    timeout = REGISTRAR["Properties"]["Timeout"]
    assert timeout < WEBHOOKS["Properties"]["ServiceTimeout"] <= 3600
    http = settings.parse(settings.HttpSettings, literal_environment(REGISTRAR))
    # One Mailchimp call (its whole retry budget plus one more wait) fits many times over
    assert http.retry_budget + http.connect_timeout + http.read_timeout < timeout / 2


def test_the_webhook_is_saved_only_once_mailchimp_can_validate_the_url():
    # Mailchimp GETs the URL first: the stage and the receiver's GET permission must exist
    assert {"ApiStage", "MailchimpWebhookFunctionValidatePermissionStage"} <= set(WEBHOOKS["DependsOn"])
    # And the log group is deleted after the resource, keeping the last Delete's logs
    assert "MailchimpWebhookRegistrarFunctionLogGroup" in WEBHOOKS["DependsOn"]


def test_the_function_may_read_the_mailchimp_key_and_the_webhook_token_and_nothing_else():
    (statement,) = REGISTRAR["Properties"]["Policies"][0]["Statement"]
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    resources = json.dumps(statement["Resource"])
    assert "MailchimpSecret" in resources and "MailchimpWebhookSecret" in resources
    assert len(statement["Resource"]) == 2


def test_the_registrar_builds_like_every_function():
    assert REGISTRAR["Metadata"] == {"BuildMethod": "makefile"}
    makefile = (REPO_ROOT / "functions" / "mailchimp_webhook_registrar" / "Makefile").read_text()
    assert makefile == (REPO_ROOT / "functions" / "health" / "Makefile").read_text()


def test_the_placeholder_of_a_stack_created_secret_is_recognised_as_one():
    placeholder = json.loads(RESOURCES["MailchimpSecret"]["Properties"]["SecretString"])

    assert MailchimpCredentials.from_document(placeholder).is_placeholder
    assert not MailchimpCredentials(api_key="0123456789abcdef-us21").is_placeholder


def test_the_sample_events_ask_for_a_valid_registration_with_a_stable_physical_id():
    create, update, delete = (
        event(f"mailchimp_webhook_registrar/{kind}.json") for kind in ("create", "update", "delete")
    )

    for request in (create, update, delete):
        WebhookRegistration.from_properties(request["ResourceProperties"])
    WebhookRegistration.from_properties(update["OldResourceProperties"])
    # Update and Delete name the id Create answers with
    expected = stable_id(create)
    assert update["PhysicalResourceId"] == delete["PhysicalResourceId"] == expected


def test_the_default_sources_parameter_splits_into_the_sources_the_receiver_reports():
    default = TEMPLATE["Parameters"]["MailchimpWebhookSources"]["Default"]
    assert WEBHOOKS["Properties"]["Sources"] == {"Fn::Split": [",", {"Ref": "MailchimpWebhookSources"}]}
    assert settings.webhook_sources(default) == tuple(default.split(","))


def literal_environment(function: dict[str, Any]) -> dict[str, str]:
    variables = function["Properties"]["Environment"]["Variables"]
    return {name: value for name, value in variables.items() if isinstance(value, str)}
