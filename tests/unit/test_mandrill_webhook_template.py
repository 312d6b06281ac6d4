"""The Mandrill webhook's wiring in template.yaml: routes, least privilege, the queue with its DLQ
and alarm, the rate alarms on the metrics the worker emits, the registration's single secret
write, and the Makefiles. (cfn-lint checks the syntax; these check the meaning.)"""

from __future__ import annotations

from chimpbridge.logic.mandrill_events import METRICS
from chimpbridge.logic.mandrill_webhook_registration import MANDRILL_WEBHOOK_EVENTS
from chimpbridge.models.mandrill_events import DETAIL_TYPES
from sandbox.stack.cfn_yaml import load_template
from sandbox.stack.env_file import REPO_ROOT

TEMPLATE = load_template(REPO_ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
RECEIVER = RESOURCES["MandrillWebhookFunction"]["Properties"]
WORKER = RESOURCES["MandrillEventsFunction"]["Properties"]
REGISTRAR = RESOURCES["MandrillWebhookRegistrarFunction"]["Properties"]


def statements(function: dict) -> list[dict]:
    return list(function["Policies"][0]["Statement"])


def test_head_and_post_are_routed():
    routes = {(event["Properties"]["Path"], event["Properties"]["Method"]) for event in RECEIVER["Events"].values()}

    assert routes == {("/webhooks/mandrill", "HEAD"), ("/webhooks/mandrill", "POST")}


def test_the_receiver_only_reads_its_keys_and_queues():
    actions = sorted(str(statement["Action"]) for statement in statements(RECEIVER))

    assert actions == ["secretsmanager:GetSecretValue", "sqs:SendMessage"]


def test_the_worker_reaches_only_its_own_items_and_the_bundles_bus():
    (table,) = [s for s in statements(WORKER) if "StateTable" in str(s["Resource"])]
    (bus,) = [s for s in statements(WORKER) if s["Action"] == "events:PutEvents"]

    leading = table["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert sorted(leading) == ["email#*", "mandrill-event#*", "suppression#*"]
    assert bus["Resource"] == {"Fn::GetAtt": ["EventBus", "Arn"]}


def test_the_sender_may_only_read_and_mark_suppressions():
    sender = RESOURCES["EmailSenderFunction"]["Properties"]
    (statement,) = [s for s in statements(sender) if "StateTable" in str(s["Resource"])]

    assert statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["suppression#*"]
    assert sender["Environment"]["Variables"]["STATE_TABLE"] == {"Ref": "StateTable"}


def test_the_events_queue_has_a_dead_letter_queue_with_an_alarm_and_outlasts_the_worker():
    queue = RESOURCES["MandrillEventsQueue"]["Properties"]
    alarm = RESOURCES["MandrillEventsDeadLetterAlarm"]["Properties"]

    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["MandrillEventsDeadLetterQueue", "Arn"]}
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["MandrillEventsDeadLetterQueue", "QueueName"]}
    assert queue["VisibilityTimeout"] >= 6 * WORKER["Timeout"]


def test_the_rate_alarms_read_metrics_the_worker_emits_with_thresholds_from_parameters():
    for alarm_id, parameter in (
        ("MandrillBounceRateAlarm", "BounceRateAlarmThreshold"),
        ("MandrillComplaintRateAlarm", "ComplaintRateAlarmThreshold"),
    ):
        alarm = RESOURCES[alarm_id]["Properties"]
        names = {m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
        assert names <= set(METRICS.values())
        assert alarm["Threshold"] == {"Ref": parameter}


def test_the_registration_writes_only_the_webhook_keys_secret():
    (write,) = [s for s in statements(REGISTRAR) if s["Action"] == "secretsmanager:PutSecretValue"]

    assert "MandrillWebhookSecret" in str(write["Resource"])
    assert "MandrillSecret," not in str(write["Resource"])


def test_the_registered_events_are_the_ones_the_worker_publishes():
    assert set(MANDRILL_WEBHOOK_EVENTS) == set(DETAIL_TYPES)


def test_each_new_function_builds_like_the_others():
    health = (REPO_ROOT / "functions" / "health" / "Makefile").read_text()
    for folder in ("mandrill_webhook", "mandrill_events", "mandrill_webhook_registrar"):
        assert (REPO_ROOT / "functions" / folder / "Makefile").read_text() == health
    for logical_id in ("MandrillWebhookFunction", "MandrillEventsFunction", "MandrillWebhookRegistrarFunction"):
        assert RESOURCES[logical_id]["Metadata"]["BuildMethod"] == "makefile"
