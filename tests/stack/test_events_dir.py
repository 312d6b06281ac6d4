"""Every sample event in events/<function-folder>/ is accepted by its function (as `make invoke` runs it).

The folder names the function: the template function whose CodeUri is functions/<folder>/.
"Accepted" means no unhandled error and, for API events, a well-formed proxy response.
"""

import json
from pathlib import Path

import pytest

from sandbox.stack.apigw_events import http_response_from_proxy
from sandbox.stack.env_file import REPO_ROOT
from sandbox.stack.loop import waiting_while_busy
from sandbox.stack.pytest_plugin import RunningStack
from sandbox.stack.s3_uploads import is_object_created, stage_upload

pytestmark = pytest.mark.xdist_group("local-stack-repo")

EVENTS_DIR = REPO_ROOT / "events"
EVENT_FILES = sorted(path for path in EVENTS_DIR.glob("*/*.json"))


@pytest.mark.parametrize("event_file", EVENT_FILES, ids=[str(path.relative_to(EVENTS_DIR)) for path in EVENT_FILES])
def test_the_function_accepts_its_sample_event(local_stack: RunningStack, event_file: Path) -> None:
    # Given the template function that lives in functions/<folder>/
    folder = event_file.parent.name
    spec = local_stack.stack.application.function_for_code_uri(folder)
    assert spec is not None, f"events/{folder}/ has no function with CodeUri functions/{folder}/ in template.yaml"
    event = json.loads(event_file.read_text(encoding="utf-8"))

    # When it is invoked with the sample event (an upload's event: once the upload is made, and
    # after the stack's own run of that upload, which holds the audience while it runs)
    if is_object_created(event):
        event, _ = stage_upload(local_stack.stack.client("s3"), event, event_file)
        waiting_while_busy(lambda: local_stack.stack.invoke(spec.logical_id, event))
    result = local_stack.invoke_result(spec.logical_id, event)

    # Then it ended without an unhandled error
    assert not result.error, f"{spec.logical_id} failed on {event_file.name}: {result.payload}"
    if isinstance(event, dict) and "httpMethod" in event:
        http_response_from_proxy(result.payload)
