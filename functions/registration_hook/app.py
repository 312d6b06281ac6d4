"""POST /hooks/{hook}: Ory Kratos' web_hook after registration (or another configured flow).

Answers 202 as soon as the email is queued; the email sender function sends it. The body is
read only after the caller is authenticated: the route hands the logic a way to read it
(``request.body``), next to the delivery.
"""

from typing import Any

from pydantic import SecretStr

from chimpbridge import settings
from chimpbridge.api import Request, Response, create_app
from chimpbridge.logic import registration_hook
from chimpbridge.models.hooks import TRIGGER_ID_HEADER, HookDelivery
from chimpbridge.observability import instrument

app = create_app()


@app.post("/hooks/<hook>")
def hook(request: Request, hook: str) -> Response:
    credential = request.header(settings.load(settings.HookSettings).auth_header)
    delivery = HookDelivery(
        hook=hook,
        credential=SecretStr(credential) if credential else None,
        trigger_id=request.header(TRIGGER_ID_HEADER) or None,
        request_id=request.request_id,
    )
    accepted = registration_hook.accept(delivery, read_body=request.body)
    return Response(202, accepted.model_dump_json())


@instrument(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
