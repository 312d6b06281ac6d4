"""/connect/mailchimp: connect the bundle to Mailchimp with OAuth 2, see its status, disconnect;
and ``Custom::MailchimpConnection``, whose delete (the stack's) removes a stored OAuth token.

``GET /connect/mailchimp?link=`` (an operator's one-time link) -> Mailchimp's authorize page;
``GET /connect/mailchimp/callback`` -> a result page; ``GET /connect/mailchimp/status`` and
``POST /connect/mailchimp/disconnect`` with ``Authorization: Bearer <operator token>``.
The flow and its checks: chimpbridge/logic/connect.py; the operator's commands: docs/connect.md.
"""

import functools
from typing import Any

from chimpbridge import custom_resource
from chimpbridge.api import Request, Response, create_app, json_response
from chimpbridge.errors import ConfigurationError, ConnectRefused, UpstreamError
from chimpbridge.logic import connect
from chimpbridge.logic.connect_pages import page
from chimpbridge.observability import instrument, logger

app = create_app()
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _base(request: Request) -> str:
    """Where this request reached API Gateway: https://<domain>/<stage> (API_PUBLIC_URL wins)."""
    context = request.event.get("requestContext") or {}
    return connect.public_base(f"https://{context.get('domainName', '')}/{context.get('stage', '')}")


def _html(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, page(kind, message), "text/html; charset=utf-8", {**NO_STORE, **(headers or {})})


def _refused(failure: Exception) -> Response:
    if isinstance(failure, ConnectRefused):
        return _html(400 if failure.kind != "unavailable" else 503, failure.kind, failure.message)
    logger.exception("connecting to Mailchimp failed", extra={"error_type": type(failure).__name__})
    return _html(503, "unavailable", "The connection could not be completed just now. Nothing was changed.")


@app.get("/connect/mailchimp")
def start(request: Request) -> Response:
    try:
        redirect = connect.start((request.event.get("queryStringParameters") or {}).get("link"), _base(request))
    except (ConnectRefused, UpstreamError, ConfigurationError) as failure:
        return _refused(failure)
    return Response(
        302, "", "text/plain", {**NO_STORE, "Location": redirect.location, "Set-Cookie": redirect.set_cookie}
    )


@app.get("/connect/mailchimp/callback")
def callback(request: Request) -> Response:
    query = {str(k): str(v) for k, v in (request.event.get("queryStringParameters") or {}).items()}
    try:
        result = connect.callback(query, connect.read_cookie(request.header("Cookie")), _base(request))
    except (ConnectRefused, UpstreamError, ConfigurationError) as failure:
        return _refused(failure)
    message = f"The bundle now uses the Mailchimp account {result.account} (data center {result.server_prefix})."
    return _html(200, "connected", message, {"Set-Cookie": result.clear_cookie})


@app.get("/connect/mailchimp/status")
def status(request: Request) -> Response:
    connect.check_operator(request.header("Authorization"), "status")
    return json_response(connect.status(_base(request)), headers=NO_STORE)


@app.post("/connect/mailchimp/disconnect")
def disconnect(request: Request) -> Response:
    connect.check_operator(request.header("Authorization"), "disconnect")
    return json_response(connect.disconnect(_base(request)), headers=NO_STORE)


def keep(event: dict[str, Any], context: Any) -> str:
    """Create and update hold nothing: the connection is made by the operator, not the stack."""
    return custom_resource.stable_id(event)


def forget(event: dict[str, Any], context: Any) -> str:
    connect.forget_token()
    return custom_resource.stable_id(event)


@functools.cache
def connection_resource() -> Any:
    return custom_resource.build(create=keep, update=keep, delete=forget)


@instrument(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    if "RequestType" in event:  # CloudFormation, for Custom::MailchimpConnection
        connection_resource()(event, context)
        return None
    return app.resolve(event, context)
