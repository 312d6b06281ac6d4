"""Audience import: a file created under imports/<audience id>/ in the bundle's bucket starts the
import state machine, which calls this function with the S3 event (then with the job it returns)
until the job comes back ``done``. Each call applies the next rows and returns the progress."""

from typing import Any

from pydantic import ValidationError

from chimpbridge.errors import InvalidRequest
from chimpbridge.logic import audience_import
from chimpbridge.models.audience_import import ImportJob
from chimpbridge.models.checks import invalid_request
from chimpbridge.observability import instrument


@instrument(correlation_id_path="execution")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        job = ImportJob.from_event(event)
    except ValidationError as exc:
        raise invalid_request(exc, "import job is invalid", fields_in_detail=True) from None
    except ValueError as exc:
        raise InvalidRequest(f"import job is invalid: {exc}") from None
    return audience_import.run(job).model_dump(mode="json", exclude_none=True)
