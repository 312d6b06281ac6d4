"""The template's event bus and rules on moto, as the local stack creates them: a rule routes
what matches its pattern to its queue, and a DISABLED rule routes nothing (as in AWS)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3

from sandbox.stack.env_file import REPO_ROOT
from sandbox.stack.intrinsics import PseudoParameters, resolve_parameters
from sandbox.stack.local_config import local_parameter_values
from sandbox.stack.resources import LocalResources, PhysicalResource
from sandbox.stack.template import SamTemplate
from tests.support.aws import REGION

TEMPLATE = REPO_ROOT / "template.yaml"
BUS_AND_RULE = ["EventBus", "UnsubscribeQueue", "UnsubscribeDeadLetterQueue", "MemberUnsubscribedRule"]


def create(moto_url: str, **parameters: str) -> dict[str, PhysicalResource]:
    template = SamTemplate.load(TEMPLATE)
    declared = template.document.get("Parameters") or {}
    values = resolve_parameters(template.document, local_parameter_values(declared, parameters))
    stack_name = f"t{uuid.uuid4().hex[:10]}"
    resources = LocalResources(template, PseudoParameters(stack_name=stack_name), values, moto_url)
    resources.ensure(BUS_AND_RULE)
    return resources.all_physical(BUS_AND_RULE)


def publish(moto_url: str, bus: str, detail_type: str, detail: dict[str, Any]) -> None:
    events = boto3.client("events", endpoint_url=moto_url, region_name=REGION)
    entry = {"EventBusName": bus, "Source": "chimpbridge.mailchimp", "DetailType": detail_type}
    answer = events.put_events(Entries=[{**entry, "Detail": json.dumps(detail)}])
    assert answer["FailedEntryCount"] == 0


def received(moto_url: str, queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name=REGION)
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def test_the_example_rule_routes_unsubscribes_to_its_queue_and_nothing_else(aws_env: str) -> None:
    # Given the bus, the example rule and its queue, as the local stack creates them (rule on)
    created = create(aws_env)
    bus = created["EventBus"].name
    assert created["EventBus"].arn.endswith(f":event-bus/{bus}")

    # When a subscribe and an unsubscribe are published on the bus
    publish(aws_env, bus, "Member Subscribed", {"email": "a@example.com"})
    publish(aws_env, bus, "Member Unsubscribed", {"email": "b@example.com", "reason": "manual"})

    # Then only the unsubscribe reaches the queue
    (event,) = received(aws_env, str(created["UnsubscribeQueue"].url))
    assert event["detail-type"] == "Member Unsubscribed"
    assert event["detail"] == {"email": "b@example.com", "reason": "manual"}


def test_a_disabled_rule_routes_nothing(aws_env: str) -> None:
    # Given the example rule as the template's default leaves it: DISABLED
    created = create(aws_env, UnsubscribeRuleState="DISABLED")

    # When an unsubscribe is published
    publish(aws_env, created["EventBus"].name, "Member Unsubscribed", {"email": "c@example.com"})

    # Then its queue stays empty
    assert received(aws_env, str(created["UnsubscribeQueue"].url)) == []


def test_locally_every_event_on_a_bus_is_also_copied_to_its_published_queue(aws_env: str) -> None:
    # Given the bus as the local stack creates it
    created = create(aws_env)
    bus = created["EventBus"]

    # When two events are published
    publish(aws_env, bus.name, "Member Subscribed", {"email": "d@example.com"})
    publish(aws_env, bus.name, "Campaign Sent", {"campaign_id": "c1"})

    # Then both are on the bus's "-published" queue, which the banner shows
    tap = bus.attributes["TapQueueUrl"]
    assert tap.endswith(f"/{bus.name}-published")
    assert sorted(event["detail-type"] for event in received(aws_env, tap)) == ["Campaign Sent", "Member Subscribed"]
