"""POST /subscribe (and its CORS preflight): newsletter signups from web forms and apps.

Takes JSON or form posts (Mailchimp's embedded-form field names included) and answers
``{"status", "message"}``; a browser's own form post is redirected (303) when the template
sets SuccessRedirectUrl / ErrorRedirectUrl. GET /subscribe/token hands out the signed form
timestamp that pages put in ``_form_token``. The use case is chimpbridge.logic.signup.
"""

from typing import Any

from chimpbridge.api import Request, Response, create_app, json_response
from chimpbridge.errors import InvalidRequest, Rejected, TooManyAttempts, UpstreamError
from chimpbridge.logic import signup
from chimpbridge.models.signup import SignupSubmission
from chimpbridge.observability import instrument

app = create_app()
NO_STORE = {"Cache-Control": "no-store"}


@app.post("/subscribe")
def subscribe(request: Request) -> Response:
    submission = SignupSubmission(
        body=request.body(),
        content_type=request.header("Content-Type"),
        user_agent=request.user_agent,
        accept=request.header("Accept"),
        accept_language=request.header("Accept-Language"),
        source_ip=request.source_ip,
        request_id=request.request_id,
    )
    try:
        result = signup.subscribe(submission)
    except (InvalidRequest, Rejected, TooManyAttempts, UpstreamError) as error:
        location = signup.error_location(submission, error)
        if location is None:
            raise
        return _see_other(location)
    location = signup.success_location(submission, result)
    if location is not None:
        return _see_other(location)
    return Response(202 if result.status == "queued" else 200, result.to_json(), headers=NO_STORE)


@app.get("/subscribe/token")
def form_token(request: Request) -> Response:
    return json_response({"form_token": signup.form_token()}, headers=NO_STORE)


def _see_other(location: str) -> Response:
    return Response(303, content_type="text/plain", headers={"Location": location})


@instrument(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
