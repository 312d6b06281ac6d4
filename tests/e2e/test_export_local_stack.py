"""The audience export on the local stack, from the repository's template: the function as the
template configures it, driven the way `make invoke` (and Step Functions) drive it."""

from __future__ import annotations

import json

import pytest

from sandbox.mailchimp.client import SandboxClient
from sandbox.stack.env_file import REPO_ROOT
from sandbox.stack.loop import invoke_until_done
from sandbox.stack.pytest_plugin import RunningStack, StackFactory
from tests.support.audience_world import new_list_id

pytestmark = pytest.mark.xdist_group("local-stack-export")

FUNCTION = "AudienceExportFunction"


@pytest.fixture(scope="module")
def stack(local_stack_factory: StackFactory) -> RunningStack:
    """The template with exports of 2 pages per invocation, so an export takes several."""
    return local_stack_factory(parameters={"ExportMaxPagesPerInvocation": "2"})


def test_make_invoke_runs_an_export_to_the_end_over_several_invocations(stack: RunningStack) -> None:
    # Given an audience of 5,500 members in the stack's sandbox
    assert stack.sandbox_url is not None
    list_id = new_list_id()
    SandboxClient(stack.sandbox_url).seed(list_id, 5500)
    event = json.loads((REPO_ROOT / "events/audience_export/full.json").read_text())
    event["audiences"] = [list_id]
    invocations: list[int] = []

    # When the schedule's event is invoked the way `make invoke` does it
    result = invoke_until_done(
        lambda job: stack.invoke(FUNCTION, job), event, on_continue=lambda count, _: invocations.append(count)
    )

    # Then it took several invocations and the export landed in the template's bucket
    assert result["done"] is True and result["results"][0]["rows"] == 5500
    assert len(invocations) >= 2
    s3 = stack.client("s3")
    bucket = stack.resource("ExportBucket").name
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=result["results"][0]["manifest_key"])["Body"].read())
    assert manifest["rows"] == 5500 and manifest["invocations"] == len(invocations) + 1
