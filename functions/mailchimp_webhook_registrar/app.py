"""Custom::MailchimpWebhooks: registers the Mailchimp audience webhooks with the stack.

crhelper answers CloudFormation (chimpbridge/custom_resource.py): SUCCESS with the physical id
and attributes below, FAILED with the message of whatever was raised, and FAILED before the
function would time out. The physical id never changes after Create: updates are in place, so
CloudFormation never sends a Delete for an old id whose webhooks the new state still uses.
"""

from typing import Any

from chimpbridge import custom_resource
from chimpbridge.logic import mailchimp_webhook_registration as registration
from chimpbridge.models.webhook_registration import WebhookRegistration
from chimpbridge.observability import instrument


def requested(event: dict[str, Any]) -> WebhookRegistration:
    return WebhookRegistration.from_properties(event.get("ResourceProperties"), event.get("PhysicalResourceId", ""))


def create(event: dict[str, Any]) -> dict[str, str]:
    return registration.register(requested(event)).attributes()


def update(event: dict[str, Any]) -> dict[str, str]:
    previous = WebhookRegistration.previous(event.get("OldResourceProperties"))
    return registration.update(requested(event), previous).attributes()


def delete(event: dict[str, Any]) -> None:
    registration.unregister(WebhookRegistration.previous(event.get("ResourceProperties")))


handle = custom_resource.registration(create=create, update=update, delete=delete)


@instrument(correlation_id_path="RequestId")
def lambda_handler(event: dict[str, Any], context: Any) -> None:
    handle(event, context)
