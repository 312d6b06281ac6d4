"""CloudFormation custom resources, on crhelper (aws-cloudformation/custom-resource-helper).

crhelper speaks the protocol: it calls the create, update or delete function the request names,
answers SUCCESS with the physical id it returns and the attributes in ``Data``, FAILED with the
message of any exception, and FAILED half a second before the function would time out, so a
stack never waits on a silent function.

One part is replaced: the delivery of the answer (a PUT of JSON to the request's
``ResponseURL``). crhelper's own sender speaks HTTPS only, has no timeouts, and retries forever
when the URL cannot be reached, so a run where nothing answers it (``make invoke`` with a
sample event, or a test) would spin until the function's timeout. Ours sends the same body with
timeouts and a few retries, over HTTP or HTTPS, never past the invocation's deadline, and
verifies certificates with ``AWS_CA_BUNDLE`` when it is set.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

import urllib3

from chimpbridge import settings
from chimpbridge.deadline import DEADLINE_MARGIN_SECONDS, remaining_invocation_seconds
from chimpbridge.observability import logger

RequestFunction = Callable[[dict[str, Any], Any], str | None]
Event = dict[str, Any]

ANSWER_ATTEMPTS = 4
ANSWER_CONNECT_TIMEOUT = 5.0
ANSWER_READ_TIMEOUT = 10.0


def build(*, create: RequestFunction, update: RequestFunction, delete: RequestFunction) -> Any:
    """A crhelper ``CfnResource`` calling these functions; call it with ``(event, context)``.

    Imported here, not at module level: crhelper imports boto3 (for its polling mode, unused).
    """
    from crhelper import CfnResource  # noqa: PLC0415

    class CustomResource(CfnResource):
        # crhelper's sender is a parameter of _send (its own tests pass one); its stub omits it.
        def _send(self, status: str | None = None, reason: str = "", send_response: Any = None) -> None:
            super()._send(status, reason, send_response=deliver_answer)  # type: ignore[misc]

    config = settings.load(settings.CustomResourceSettings)
    # sleep_on_delete=0: crhelper would wait up to 120 s on every Delete for its logs to reach
    # CloudWatch; our functions' log groups are deleted after the resources they serve.
    resource = CustomResource(log_level=config.log_level, boto_level="WARNING", sleep_on_delete=0)
    resource.create(create)
    resource.update(update)
    resource.delete(delete)
    return resource


def registration(
    *,
    create: Callable[[Event], Mapping[str, str]],
    update: Callable[[Event], Mapping[str, str]],
    delete: Callable[[Event], None],
) -> Callable[[Event, Any], None]:
    """The handler of a resource that registers something with the stack under its
    :func:`stable_id`: ``create`` and ``update`` return the attributes the stack may read
    (``!GetAtt``), ``delete`` removes what was registered. The crhelper resource is built on the
    first invocation: crhelper creates AWS clients when it is built."""

    def answering(work: Callable[[Event], Mapping[str, str]]) -> RequestFunction:
        def request(event: Event, context: Any) -> str:
            resource().Data.update(work(event))
            return stable_id(event)

        return request

    def removing(event: Event, context: Any) -> str:
        delete(event)
        return stable_id(event)

    @functools.cache
    def resource() -> Any:
        return build(create=answering(create), update=answering(update), delete=removing)

    def handle(event: Event, context: Any) -> None:
        resource()(event, context)

    return handle


def stable_id(event: dict[str, Any]) -> str:
    """The resource's physical id: the one CloudFormation already holds, else (on Create) its
    stack and logical id (``arn:...:stack/<name>/<uuid>`` -> ``<name>/<uuid>/<logical id>``).
    It never changes after Create: updates are in place, so CloudFormation never sends a Delete
    for an old id whose registration the new state still uses."""
    existing = event.get("PhysicalResourceId")
    if existing:
        return str(existing)
    return f"{str(event['StackId']).split(':stack/', 1)[-1]}/{event['LogicalResourceId']}"


def deliver_answer(url: str, body: dict[str, Any], ssl_verify: Any = None) -> None:
    """PUT the answer to CloudFormation's presigned URL. Never raises: if the answer cannot be
    delivered there is nobody else to tell, and CloudFormation gives up on the resource after
    its ``ServiceTimeout``."""
    config = settings.load(settings.CustomResourceSettings)
    data = json.dumps(body).encode()
    remaining = remaining_invocation_seconds()
    total = ANSWER_CONNECT_TIMEOUT + ANSWER_READ_TIMEOUT if remaining is None else remaining - DEADLINE_MARGIN_SECONDS
    timeout = urllib3.Timeout(
        connect=max(0.5, min(ANSWER_CONNECT_TIMEOUT, total)), read=max(0.5, min(ANSWER_READ_TIMEOUT, total))
    )
    retries = urllib3.Retry(
        total=ANSWER_ATTEMPTS - 1,
        backoff_factor=0.5,
        allowed_methods=None,  # a PUT of the same answer is safe to repeat
        status_forcelist=(408, 429, 500, 502, 503, 504),
        raise_on_status=False,
    )
    http = urllib3.PoolManager(ca_certs=config.ca_bundle) if config.ca_bundle else urllib3.PoolManager()
    summary = {"status": body.get("Status"), "physical_id": body.get("PhysicalResourceId")}
    try:
        # Content-Type empty: the URL is presigned without one, and S3 checks it.
        response = http.request("PUT", url, body=data, headers={"Content-Type": ""}, timeout=timeout, retries=retries)
    except urllib3.exceptions.HTTPError as error:
        # The cause, not the error itself: that would print the presigned URL (a write credential).
        cause = getattr(error, "reason", None) or error
        logger.error("the answer could not be delivered to CloudFormation", extra={**summary, "error": repr(cause)})
        return
    finally:
        http.clear()
    if response.status >= 300:
        logger.error("CloudFormation refused the answer", extra={**summary, "answered": response.status})
    else:
        logger.info("answer delivered to CloudFormation", extra=summary)
