"""The Mailchimp webhook's wiring in template.yaml: it answers inside Mailchimp's 10 s, reaches
only its own idempotency records and its own bus, listens to user and admin changes by default,
and the secret the template generates is the one the code and the docs read. (cfn-lint checks
the syntax; these check the meaning.)"""

from __future__ import annotations

import pytest

from chimpbridge import settings
from chimpbridge.errors import ConfigurationError
from chimpbridge.logic import mailchimp_webhook
from chimpbridge.secrets import WebhookSecret
from sandbox.stack.cfn_yaml import load_template
from sandbox.stack.env_file import REPO_ROOT

TEMPLATE = load_template(REPO_ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
RECEIVER = RESOURCES["MailchimpWebhookFunction"]["Properties"]
MAILCHIMP_LIMIT_SECONDS = 10


def statements() -> list[dict]:
    return list(RECEIVER["Policies"][0]["Statement"])


def test_the_receiver_ends_before_mailchimp_gives_up():
    assert RECEIVER["Timeout"] < MAILCHIMP_LIMIT_SECONDS


def test_the_receiver_reaches_only_its_own_idempotency_records():
    (statement,) = [s for s in statements() if "IdempotencyTable" in str(s["Resource"])]

    leading_keys = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert leading_keys == [f"{mailchimp_webhook.IDEMPOTENCY_KEY_PREFIX}#*"]


def test_the_receiver_may_publish_only_on_the_bundles_bus():
    (statement,) = [s for s in statements() if "events:PutEvents" in str(s["Action"])]

    assert statement["Resource"] == {"Fn::GetAtt": ["EventBus", "Arn"]}
    assert RECEIVER["Environment"]["Variables"]["EVENT_BUS_NAME"] == {"Ref": "EventBus"}


def test_every_method_of_the_webhook_url_is_routed():
    routes = {(event["Properties"]["Path"], event["Properties"]["Method"]) for event in RECEIVER["Events"].values()}

    assert routes == {("/webhooks/mailchimp/{token}", method) for method in ("GET", "HEAD", "POST")}


def test_the_default_sources_leave_our_own_api_writes_out(monkeypatch):
    # Given the template's default MailchimpWebhookSources, as the function gets it
    monkeypatch.setenv("MAILCHIMP_WEBHOOK_SOURCES", TEMPLATE["Parameters"]["MailchimpWebhookSources"]["Default"])
    monkeypatch.setenv("MAILCHIMP_WEBHOOK_SECRET_ARN", "arn")
    monkeypatch.setenv("EVENT_BUS_NAME", "bus")
    settings.clear()

    # Then the webhook listens to subscribers and admins, not to the API (our own signups)
    assert settings.load(settings.MailchimpWebhookSettings).sources == ("user", "admin")
    settings.clear()


def test_unknown_sources_fail_naming_the_variable():
    environ = {"MAILCHIMP_WEBHOOK_SECRET_ARN": "arn", "EVENT_BUS_NAME": "bus", "MAILCHIMP_WEBHOOK_SOURCES": "user,bots"}

    with pytest.raises(ConfigurationError, match="MAILCHIMP_WEBHOOK_SOURCES"):
        settings.parse(settings.MailchimpWebhookSettings, environ)


def test_the_generated_secret_is_one_the_receiver_accepts():
    generated = RESOURCES["MailchimpWebhookSecret"]["Properties"]["GenerateSecretString"]

    secret = WebhookSecret.from_document({"webhook_tokens": [], generated["GenerateStringKey"]: "x" * 48})

    assert secret.accepted_tokens == ["x" * 48]


@pytest.mark.parametrize("doc", ["docs/mailchimp-webhooks.md"])
def test_the_docs_read_the_token_the_template_generates(doc):
    generated = RESOURCES["MailchimpWebhookSecret"]["Properties"]["GenerateSecretString"]["GenerateStringKey"]

    assert f"| jq -r .SecretString | jq -r .{generated}" in (REPO_ROOT / doc).read_text()


def test_the_example_rule_is_off_by_default_and_sends_unsubscribes_to_its_queue():
    rule = RESOURCES["MemberUnsubscribedRule"]["Properties"]

    assert TEMPLATE["Parameters"]["UnsubscribeRuleState"]["Default"] == "DISABLED"
    assert rule["EventPattern"] == {"source": ["chimpbridge.mailchimp"], "detail-type": ["Member Unsubscribed"]}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["UnsubscribeQueue", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["UnsubscribeDeadLetterQueue", "Arn"]}
