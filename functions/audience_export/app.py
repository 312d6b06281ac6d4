"""Audience export: EventBridge Scheduler starts the export state machine, which calls this
function with the job until the job comes back ``done``. Each call exports (part of) one
audience and returns the job with its progress: the state machine's next input."""

from typing import Any

from pydantic import ValidationError

from chimpbridge.logic import export
from chimpbridge.models.checks import invalid_request
from chimpbridge.models.export import ExportJob
from chimpbridge.observability import instrument


@instrument(correlation_id_path="execution")
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        job = ExportJob.model_validate(event)
    except ValidationError as exc:
        raise invalid_request(exc, "export job is invalid", fields_in_detail=True) from None
    return export.run(job).model_dump(mode="json", exclude_none=True)
