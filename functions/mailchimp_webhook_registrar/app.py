"""Custom::MailchimpWebhooks: registers the Mailchimp audience webhooks with the stack.

crhelper answers CloudFormation (chimpbridge/custom_resource.py): SUCCESS with the physical id
and attributes below, FAILED with the message of whatever was raised, and FAILED before the
function would time out. The physical id never changes after Create: updates are in place, so
CloudFormation never sends a Delete for an old id whose webhooks the new state still uses.
"""

import functools
from typing import Any

from chimpbridge import custom_resource
from chimpbridge.logic import mailchimp_webhook_registration as registration
from chimpbridge.models.webhook_registration import WebhookRegistration
from chimpbridge.observability import instrument


def requested(event: dict[str, Any]) -> WebhookRegistration:
    return WebhookRegistration.from_properties(event.get("ResourceProperties"), event.get("PhysicalResourceId", ""))


def create(event: dict[str, Any], context: Any) -> str:
    result = registration.register(requested(event))
    resource().Data.update(result.attributes())
    return custom_resource.stable_id(event)


def update(event: dict[str, Any], context: Any) -> str:
    result = registration.update(requested(event), WebhookRegistration.previous(event.get("OldResourceProperties")))
    resource().Data.update(result.attributes())
    return custom_resource.stable_id(event)


def delete(event: dict[str, Any], context: Any) -> str:
    registration.unregister(WebhookRegistration.previous(event.get("ResourceProperties")))
    return custom_resource.stable_id(event)


@functools.cache
def resource() -> Any:
    """Built on the first invocation: crhelper creates AWS clients when it is built."""
    return custom_resource.build(create=create, update=update, delete=delete)


@instrument(correlation_id_path="RequestId")
def lambda_handler(event: dict[str, Any], context: Any) -> None:
    resource()(event, context)
