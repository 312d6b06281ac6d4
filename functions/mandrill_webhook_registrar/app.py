"""Custom::MandrillWebhook: registers the Mandrill webhook with the stack and keeps its key in
the webhook keys secret; removes it when the stack is deleted.

crhelper answers CloudFormation (chimpbridge/custom_resource.py). The physical id never changes
after Create: updates are in place, so CloudFormation never sends a Delete for an old id.
"""

from typing import Any

from chimpbridge import custom_resource
from chimpbridge.logic import mandrill_webhook_registration as registration
from chimpbridge.logic.mandrill_webhook_registration import MandrillWebhookRegistration
from chimpbridge.observability import instrument


def create(event: dict[str, Any]) -> dict[str, str]:
    return registration.register(
        MandrillWebhookRegistration.from_properties(event.get("ResourceProperties"))
    ).attributes()


def update(event: dict[str, Any]) -> dict[str, str]:
    return registration.register(
        MandrillWebhookRegistration.from_properties(event.get("ResourceProperties")),
        MandrillWebhookRegistration.previous(event.get("OldResourceProperties")),
    ).attributes()


def delete(event: dict[str, Any]) -> None:
    registration.unregister(MandrillWebhookRegistration.previous(event.get("ResourceProperties")))


handle = custom_resource.registration(create=create, update=update, delete=delete)


@instrument(correlation_id_path="RequestId")
def lambda_handler(event: dict[str, Any], context: Any) -> None:
    handle(event, context)
