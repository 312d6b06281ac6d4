"""POST /subscribe (and its CORS preflight): newsletter signups from web forms and apps.

Takes JSON or form posts (Mailchimp's embedded-form field names included) and answers
``{"status", "message"}``; a browser's own form post is redirected (303) when the template
sets SuccessRedirectUrl / ErrorRedirectUrl. GET /subscribe/token hands out the signed form
timestamp that pages put in ``_form_token``. The use case is chimpbridge.logic.signup.
"""

import base64
import binascii
from typing import Any

from aws_lambda_powertools.event_handler import Response

from chimpbridge.api import create_app
from chimpbridge.errors import InvalidRequest, Rejected, UpstreamError
from chimpbridge.logic import signup
from chimpbridge.models.signup import SignupSubmission
from chimpbridge.observability import instrument

app = create_app(validate=False)  # the routes read their bodies themselves


@app.post("/subscribe")
def subscribe() -> Response[str]:
    submission = _submission()
    try:
        result = signup.subscribe(submission)
    except (InvalidRequest, Rejected, UpstreamError) as error:
        location = signup.error_location(submission, error)
        if location is None:
            raise
        return _see_other(location)
    location = signup.success_location(submission, result)
    if location is not None:
        return _see_other(location)
    return Response(
        status_code=202 if result.status == "queued" else 200,
        content_type="application/json",
        body=result.model_dump_json(),
        headers={"Cache-Control": "no-store"},
    )


@app.get("/subscribe/token")
def form_token() -> Response[str]:
    token = signup.form_token()
    return Response(200, "application/json", token.model_dump_json(), headers={"Cache-Control": "no-store"})


def _submission() -> SignupSubmission:
    event = app.current_event
    raw = event.body or ""
    try:
        body = base64.b64decode(raw, validate=True) if event.is_base64_encoded else raw.encode()
    except binascii.Error:
        raise InvalidRequest("The request body is not valid base64.") from None
    identity = event.request_context.identity
    return SignupSubmission(
        body=body,
        content_type=event.headers.get("content-type"),
        user_agent=event.headers.get("user-agent") or identity.user_agent,
        accept=event.headers.get("accept"),
        accept_language=event.headers.get("accept-language"),
        source_ip=identity.source_ip,
        request_id=event.request_context.request_id,
    )


def _see_other(location: str) -> Response[str]:
    return Response(status_code=303, content_type="text/plain", body="", headers={"Location": location})


@instrument(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
