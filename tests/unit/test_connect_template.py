"""The connect function in template.yaml: built like every function, least privilege (it may
write the Mailchimp secret and nothing else), and the OAuth secret's signing key generated,
never written in the template. (cfn-lint checks the syntax; these check the meaning.)"""

from __future__ import annotations

import json

from sandbox.stack.cfn_yaml import load_template
from sandbox.stack.env_file import REPO_ROOT

TEMPLATE = load_template(REPO_ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
CONNECT = RESOURCES["ConnectFunction"]


def statements() -> dict[str, dict]:
    return {statement["Sid"]: statement for statement in CONNECT["Properties"]["Policies"][0]["Statement"]}


def test_the_function_builds_like_every_function():
    assert CONNECT["Metadata"] == {"BuildMethod": "makefile"}
    assert CONNECT["Properties"]["CodeUri"] == "functions/connect/"
    makefile = (REPO_ROOT / "functions/connect/Makefile").read_text()
    assert makefile == (REPO_ROOT / "functions/health/Makefile").read_text()


def test_it_serves_the_four_connect_routes():
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in CONNECT["Properties"]["Events"].values()}
    assert routes == {
        ("GET", "/connect/mailchimp"),
        ("GET", "/connect/mailchimp/callback"),
        ("GET", "/connect/mailchimp/status"),
        ("POST", "/connect/mailchimp/disconnect"),
    }


def test_it_may_write_only_the_mailchimp_secret():
    writes = [s for s in statements().values() if "PutSecretValue" in json.dumps(s["Action"])]
    assert [s["Action"] for s in writes] == ["secretsmanager:PutSecretValue"]
    assert json.dumps(writes[0]["Resource"]) == json.dumps(
        {"Fn::If": ["CreateMailchimpSecret", {"Ref": "MailchimpSecret"}, {"Ref": "MailchimpSecretArn"}]}
    )


def test_it_may_put_only_its_own_items_in_the_state_table():
    table = statements()["UseEachLinkAndStateOnce"]
    assert table["Action"] == "dynamodb:PutItem"
    assert table["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["connect#*"]}}


def test_the_signing_key_is_generated_never_written_in_the_template():
    secret = RESOURCES["MailchimpOAuthSecret"]["Properties"]
    assert secret["GenerateSecretString"]["GenerateStringKey"] == "signing_key"
    assert "signing_key" not in secret["GenerateSecretString"]["SecretStringTemplate"]


def test_an_alarm_calls_the_operator_when_mailchimp_refuses_the_credentials():
    alarm = RESOURCES["MailchimpNotConnectedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("ChimpBridge", "MailchimpNotConnected")
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_uninstall_removes_the_token_after_the_webhooks():
    connection = RESOURCES["MailchimpConnection"]
    assert connection["Type"] == "Custom::MailchimpConnection"
    assert connection["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["ConnectFunction", "Arn"]}
    # Deletion runs in reverse: the webhooks (which need the token) go before the connection
    assert "MailchimpConnection" in RESOURCES["MailchimpWebhooks"]["DependsOn"]
