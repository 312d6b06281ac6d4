"""Newsletter signup (``POST /subscribe``): read, screen, upsert into the audience, and never
lose the signup.

The path of one signup:

1. :mod:`~chimpbridge.logic.signup_form` reads JSON or a form post into a checked ``Signup``.
2. :mod:`~chimpbridge.logic.signup_guard` screens out bots (they get the usual success answer).
3. The address' daily limit (``SIGNUP_MAX_PER_ADDRESS_PER_DAY``, counted in the state table):
   confirmation emails go to the address, whoever asks, so a script cannot mail one stranger
   over and over from many IPs. Over it: a 429 problem with ``Retry-After``.
4. :func:`~chimpbridge.logic.signup_apply.apply_signup` adds the person to Mailchimp; an
   existing member's details are left alone unless ``SIGNUP_UPDATE_EXISTING``.
5. If it cannot be applied now, for whatever reason (429, 5xx, timeout, connection error
   after the client's own short retry; a setting of ours Mailchimp refuses; an answer we
   cannot read), the signup goes on the signup queue and the person hears ``queued``; the
   signup worker applies it later with the same rules, and its DLQ alarm calls a person.

Only answers about the person (a fake-looking address, a forgotten one, a field they filled
in...) reach them, as ``Rejected``/``InvalidRequest`` with a message they can act on.

Privacy mode (``SIGNUP_PRIVACY_MODE``) trades those answers for silence about the list: every
signup that passes the checks at the door is queued for the worker and answered alike (202,
one body, one redirect), also over the address limit, so neither the answer nor its timing says
whether an address is on the list. docs/security.md weighs it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from chimpbridge import settings
from chimpbridge.errors import (
    ChimpBridgeError,
    ConfigurationError,
    InvalidRequest,
    Rejected,
    TooManyAttempts,
    UpstreamError,
)
from chimpbridge.logic import signup_form, signup_guard
from chimpbridge.logic.signup_apply import apply_signup
from chimpbridge.models.signup import QueuedSignup, Signup, SignupAnswer, SignupResult, SignupSubmission
from chimpbridge.observability import count, logger

MESSAGES: dict[SignupResult, str] = {
    "pending": "Almost done: please confirm your subscription with the link in the email we just sent you.",
    # Mailchimp does not send the confirmation again for a member who is pending already.
    "already_pending": (
        "You have already signed up: please confirm with the link in the email we sent you then "
        "(check your spam folder if you cannot find it)."
    ),
    "subscribed": "Thank you! You are now subscribed.",
    "already_subscribed": "You are already subscribed. Thank you!",
    "queued": "Thank you! We have received your signup and will add you to the list in a moment.",
}
UPDATED = " We have updated your details."  # said only where a signup may update them
PRIVACY_REASON = "privacy-mode"
# Privacy mode: one answer for every accepted signup, whatever the address' standing.
PRIVATE_MESSAGES = {
    "pending": (
        "Thank you! If this address is not on our list yet, we will send it an email with a link to "
        "confirm the subscription."
    ),
    "subscribed": "Thank you! We have received your signup.",
}
METRICS: dict[SignupResult, str] = {
    "pending": "SignupPending",
    "already_pending": "SignupAlreadyPending",
    "subscribed": "SignupSubscribed",
    "already_subscribed": "SignupAlreadySubscribed",
    "queued": "SignupQueued",
}
TOO_MANY_FOR_ADDRESS = (
    "This address has been signed up several times today already. Please check your inbox (and spam "
    "folder) for our email, or try again tomorrow."
)


def subscribe(submission: SignupSubmission) -> SignupAnswer:
    """Add the person in ``submission`` to the audience; raises ``InvalidRequest``/``Rejected``
    for what they can fix, ``TooManyAttempts`` when the address was signed up too often today,
    ``UpstreamError`` only when neither Mailchimp nor the queue took it."""
    config = settings.load(settings.SignupSettings)
    try:
        fields = signup_form.read_fields(submission, config.field_map, config.max_body_bytes)
        verdict = _screen(fields, submission, config)
        if verdict.bot:
            logger.info("signup looks automated; answered as usual, nothing written", extra={"reason": verdict.reason})
            count("SignupBotBlocked")
            return answer(config.status_if_new)
        signup = signup_form.build_signup(
            fields,
            field_map=config.field_map,
            list_id=config.list_id,
            status_if_new=config.status_if_new,
            accept_language=submission.accept_language,
            source_ip=submission.source_ip,
        )
    except InvalidRequest:
        count("SignupInvalid")
        raise
    signup = replace(signup, update_existing=config.update_existing)
    if not _within_address_limit(signup, config):
        return answer("queued")  # privacy mode: a limited address is answered like any other
    if config.privacy_mode:
        # Applied by the worker, never here: neither the answer nor its timing depends on
        # whether the address is on the list, and what Mailchimp says about it is only logged.
        enqueue(signup, reason=PRIVACY_REASON, request_id=submission.request_id)
        count("SignupQueued")
        return answer("queued")
    outcome: SignupResult
    try:
        field_names = {**fields.merge_field_names, "EMAIL": fields.email_field}
        outcome = apply_signup(signup, merge_field_names=field_names)
    except Rejected as rejection:
        logger.info("signup rejected", extra={"kind": rejection.kind, "email": signup.email})
        count("SignupRejected")
        if rejection.kind == "signup-forgotten" and config.hosted_form_url:
            rejection.extra["signup_url"] = config.hosted_form_url
        raise
    except InvalidRequest:
        count("SignupInvalid")
        raise
    except Exception as failure:  # noqa: BLE001 - logged with its cause below; a checked signup is never lost
        # Whatever keeps it from Mailchimp now (an outage, a throttle, a key being rotated, a
        # setting Mailchimp refuses, an answer we cannot read), the signup waits on the queue;
        # the worker and its DLQ alarm take over.
        enqueue(signup, reason=_not_applied(failure), request_id=submission.request_id)
        outcome = "queued"
    count(METRICS[outcome])
    return answer(outcome)


def answer(outcome: SignupResult) -> SignupAnswer:
    config = settings.load(settings.SignupSettings)
    if config.privacy_mode:
        return SignupAnswer(status="queued", message=PRIVATE_MESSAGES[config.status_if_new], result="queued")
    status = "pending" if outcome == "already_pending" else outcome
    message = MESSAGES[outcome]
    if config.update_existing and outcome in ("already_pending", "already_subscribed"):
        message += UPDATED
    return SignupAnswer(status=status, message=message, result=outcome)


def _within_address_limit(signup: Signup, config: settings.SignupSettings) -> bool:
    """Count this signup against its address' daily limit (confirmation emails go to that address,
    whoever asks). False in privacy mode when over it; raises ``TooManyAttempts`` otherwise.

    In privacy mode a 429 would tell a stranger that the address was signed up several times today
    (by its owner, maybe): it gets the usual answer instead, and nothing is sent."""
    if not config.max_per_address or config.state_table is None:
        return True
    from chimpbridge.dal import signup_limits  # noqa: PLC0415 - only when a limit is configured

    try:
        wait = signup_limits.take(config.state_table, signup.email, limit=config.max_per_address)
    except UpstreamError as failure:
        # A person must not pay for a DynamoDB hiccup; the WAF rule and concurrency still hold.
        logger.warning("signup limit per address not checked", extra={"error": str(failure)})
        count("SignupLimitUnchecked")
        return True
    if not wait:
        return True
    logger.info("signup over the limit of its address; nothing sent", extra={"email": signup.email})
    count("SignupAddressLimited")
    if config.privacy_mode:
        return False
    raise TooManyAttempts("signup-too-many-for-address", TOO_MANY_FOR_ADDRESS, retry_after_seconds=wait)


def enqueue(signup: Signup, *, reason: str, request_id: str | None) -> None:
    """Put ``signup`` on the signup queue; raises ``UpstreamError`` if SQS will not take it."""
    from chimpbridge.dal import aws_errors, queues  # noqa: PLC0415 - boto3 only when a signup must wait

    queue_url = settings.load(settings.SignupSettings).queue_url
    message = QueuedSignup(signup=signup, queued_at=datetime.now(UTC), reason=reason, request_id=request_id)
    try:
        queues.send(queue_url, message.to_json())
    except Exception as exc:
        # Neither Mailchimp nor the queue took it: the one case where the person must be asked
        # to try again (503; 500 for anything but SQS itself), so it is logged as loudly as we can.
        logger.exception(
            "signup NOT queued: it was not applied (privacy mode, or Mailchimp failed) and the signup queue failed",
            extra={"reason": reason, "error_type": type(exc).__name__, "email": signup.email},
        )
        count("SignupNotQueued")
        if aws_errors.is_aws_error(exc):
            raise UpstreamError("sqs", None, type(exc).__name__) from exc
        raise
    # In privacy mode every signup takes this path: nothing is wrong then.
    log = logger.info if reason == PRIVACY_REASON else logger.warning
    log("signup queued for the worker", extra={"reason": reason, "email": signup.email})


def form_token() -> str:
    """``GET /subscribe/token``: a signed timestamp for the form's ``_form_token`` field."""
    config = settings.load(settings.SignupSettings)
    return signup_guard.issue_token(config.form_secret_arn)


def wants_redirect(submission: SignupSubmission) -> bool:
    """A browser's own form post (not a script's fetch): it shows whatever page it is sent."""
    browser_form = signup_form.media_type(submission.content_type) == "application/x-www-form-urlencoded"
    return browser_form and "text/html" in (submission.accept or "")


def success_location(submission: SignupSubmission, result: SignupAnswer) -> str | None:
    """Where a browser form post goes after success (``SuccessRedirectUrl``), if configured."""
    url = settings.load(settings.SignupSettings).success_redirect_url
    if url is None or not wants_redirect(submission):
        return None
    query = {"status": result.status, "message": result.message}
    if result.result == "already_pending":
        query["type"] = "already-pending"
    return _with_query(url, query)


def error_location(submission: SignupSubmission, error: ChimpBridgeError) -> str | None:
    """Where a browser form post goes after an error (``ErrorRedirectUrl``), if configured."""
    url = settings.load(settings.SignupSettings).error_redirect_url
    if url is None or not wants_redirect(submission):
        return None
    query = {"status": "error"}
    if isinstance(error, Rejected):
        query.update(type=error.kind, message=error.message)
        if isinstance(error.extra.get("signup_url"), str):
            query["signup_url"] = error.extra["signup_url"]
    elif isinstance(error, TooManyAttempts):
        query.update(type=error.kind, message=error.message)
    elif isinstance(error, InvalidRequest):
        first = error.errors[0] if error.errors else None
        query.update(type="invalid-request", message=first.message if first else error.detail)
        if first is not None:
            query["field"] = first.field
    else:
        query.update(type="unavailable", message="We could not take your signup right now. Please try again.")
    return _with_query(url, query)


def _with_query(url: str, values: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key not in values]
    return urlunsplit(parts._replace(query=urlencode([*query, *values.items()])))


def _screen(
    fields: signup_form.SignupFields, submission: SignupSubmission, config: settings.SignupSettings
) -> signup_guard.Verdict:
    try:
        return signup_guard.screen(
            honeypot_filled=fields.honeypot_filled,
            form_token=fields.form_token,
            user_agent=submission.user_agent,
            browser_form=fields.source == "form",
            form_secret_arn=config.form_secret_arn,
            require_token=config.require_form_token,
        )
    except UpstreamError as failure:
        # The token key cannot be read right now: a real person must not pay for that.
        logger.warning("form token not checked", extra={"error": str(failure)})
        return signup_guard.PERSON


def _not_applied(failure: Exception) -> str:
    """Log why a checked signup could not be applied now; returns the reason it is queued with."""
    if isinstance(failure, UpstreamError):
        reason = f"{failure.service}-{failure.status or 'unreachable'}"
        if not failure.transient:
            # 400 not about the person, 401, 403, 404: a setting of ours (an interest id, a
            # marketing permission, a merge field, the key, the audience). Queued meanwhile;
            # the worker applies it once the setting is fixed, or leaves it in the DLQ.
            detail = getattr(failure, "detail", "")
            logger.error(
                "Mailchimp refused the signup over our configuration; queued until it is fixed",
                extra={"reason": reason, "error": str(failure), "detail": detail},
            )
            count("SignupMisconfigured")
        else:
            logger.warning("Mailchimp could not take the signup now; queued", extra={"reason": reason})
        return reason
    if isinstance(failure, ConfigurationError):
        logger.error("signup path misconfigured; queueing the signup", extra={"error": str(failure)})
        count("SignupMisconfigured")
        return "configuration"
    logger.exception("signup could not be applied; queueing it", extra={"error_type": type(failure).__name__})
    count("SignupApplyFailed")
    return f"error-{type(failure).__name__}"
