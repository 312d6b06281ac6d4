"""What an AWS failure means, for the logic that must tell one apart: logic never imports boto3
or botocore (``tests/unit/test_layer_boundaries.py``), so it asks here.

botocore is only looked at once something has loaded it: an error raised where botocore was
never imported cannot be one of its errors, so classifying a Mailchimp failure imports nothing.
"""

from __future__ import annotations

import sys

from chimpbridge.errors import is_transient_status

# Error codes that say "not now" rather than "not this": throttling, a busy or failing service,
# a request not read in time.
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",  # S3: the upload was not read in time (a 400 that is worth retrying)
        "RequestTimeoutException",
    }
)


def failure_types() -> tuple[type[Exception], ...]:
    """botocore's two failures, for an ``except`` clause: AWS answered with an error
    (``ClientError``), or did not answer (``BotoCoreError``). None while botocore is not loaded."""
    if "botocore.exceptions" not in sys.modules:
        return ()
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - loaded already

    return (BotoCoreError, ClientError)


def is_aws_error(error: BaseException) -> bool:
    """Whether botocore raised ``error``: AWS answered with an error, or did not answer at all."""
    return isinstance(error, failure_types())


def is_transient(error: BaseException) -> bool:
    """Whether the AWS failure ``error`` can succeed later: no answer, a status that says "not
    now" (:func:`~chimpbridge.errors.is_transient_status`), or one of the codes above."""
    if not is_aws_error(error):
        return False
    from botocore.exceptions import ClientError  # noqa: PLC0415 - loaded already

    if isinstance(error, ClientError):
        details = error.response
        status = int(details.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return is_transient_status(status) or details.get("Error", {}).get("Code") in TRANSIENT_CODES
    return True  # BotoCoreError: no answer (a connection, a timeout, a credential lookup)
