"""GET /health: answers 200 when the function can start and its configuration parses.

Load balancers and uptime checks call it; it makes no upstream call, so it stays cheap and
never spends the account's Mailchimp connections."""

from typing import Any

from chimpbridge import __version__
from chimpbridge.api import Request, Response, create_app, json_response
from chimpbridge.observability import instrument

app = create_app()


@app.get("/health")
def health(request: Request) -> Response:
    return json_response({"status": "ok", "version": __version__})


@instrument(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
