"""/webhooks/mailchimp/{token}: Mailchimp's audience webhook.

GET and HEAD (Mailchimp's URL validator) answer 200 for the right token; POST publishes the
change on the event bus, once per change however often Mailchimp delivers it. The body is read
only after the token is checked. This function never answers 410 (Mailchimp would disable
the webhook for good): create_app rules it out.
"""

from typing import Any

from pydantic import SecretStr

from chimpbridge.api import Request, Response, create_app
from chimpbridge.logic import mailchimp_webhook
from chimpbridge.models.audience_events import SIGNATURE_HEADER, WebhookDelivery
from chimpbridge.observability import instrument

app = create_app(never_answer=(410,))
ROUTE = "/webhooks/mailchimp/<token>"


def delivery(request: Request, token: str) -> WebhookDelivery:
    return WebhookDelivery(
        token=SecretStr(token),
        signature=request.header(SIGNATURE_HEADER),
        request_id=request.request_id,
    )


@app.get(ROUTE)
@app.head(ROUTE)
def validate(request: Request, token: str) -> Response:
    answer = mailchimp_webhook.validate(delivery(request, token))
    return Response(200, answer.model_dump_json(exclude_none=True, exclude_defaults=True))


@app.post(ROUTE)
def deliver(request: Request, token: str) -> Response:
    answer = mailchimp_webhook.accept(delivery(request, token), read_body=request.body)
    return Response(200, answer.model_dump_json(exclude_none=True))


@instrument(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
