"""POST /hooks/{hook}: Ory Kratos' web_hook after registration (or another configured flow).

Answers 202 as soon as the email is queued; the email sender function sends it. The body is
read only after the caller is authenticated, so this route parses it itself (in the logic)
rather than through the resolver's body validation.
"""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from pydantic import SecretStr

from chimpbridge import settings
from chimpbridge.api import create_app
from chimpbridge.logic import registration_hook
from chimpbridge.models.hooks import TRIGGER_ID_HEADER, HookDelivery
from chimpbridge.observability import instrument

app = create_app()


@app.post("/hooks/<hook>")
def hook(hook: str) -> Response[str]:
    request = app.current_event
    credential = request.headers.get(settings.load(settings.HookSettings).auth_header)
    delivery = HookDelivery(
        hook=hook,
        credential=SecretStr(credential) if credential else None,
        trigger_id=request.headers.get(TRIGGER_ID_HEADER) or None,
        request_id=request.request_context.request_id,
        body=request.decoded_body or "",
    )
    accepted = registration_hook.accept(delivery)
    return Response(status_code=202, content_type="application/json", body=accepted.model_dump_json())


@instrument(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
