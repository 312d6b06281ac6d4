"""/webhooks/mandrill: Mandrill's message and sync events.

HEAD (Mandrill checks a URL with it when the webhook is saved) answers 200. POST checks the
signature and queues the events for the worker, answering 200 as soon as they are queued.
"""

from typing import Any

from chimpbridge.api import Request, Response, create_app
from chimpbridge.logic import mandrill_webhook
from chimpbridge.models.mandrill_events import SIGNATURE_HEADER, MandrillDelivery
from chimpbridge.observability import instrument

app = create_app()
ROUTE = "/webhooks/mandrill"


@app.head(ROUTE)
def check(request: Request) -> Response:
    return Response(200, "")


@app.post(ROUTE)
def deliver(request: Request) -> Response:
    context = request.event.get("requestContext") or {}
    delivery = MandrillDelivery(
        called_url=f"{request.header('X-Forwarded-Proto') or 'https'}://{context.get('domainName')}{context.get('path')}",
        signature=request.header(SIGNATURE_HEADER),
        request_id=request.request_id,
        content_type=request.header("Content-Type"),
    )
    answer = mandrill_webhook.accept(delivery, read_body=request.body)
    return Response(200, answer.model_dump_json())


@instrument(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
