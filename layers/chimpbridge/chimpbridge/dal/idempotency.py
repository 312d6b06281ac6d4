"""Powertools Idempotency on the ``IDEMPOTENCY_TABLE`` (key ``id``, TTL ``expiration``).

A use case declares once, at module level, how it makes a function idempotent (:class:`Once`),
and runs the function through it: for a given key taken from its one pydantic model, it runs
to completion at most once while the record lives. A repeat gets the stored result back marked
``duplicate=True``; a repeat while the first attempt is still running raises
:class:`~chimpbridge.errors.Busy` (try again shortly). An attempt that dies mid-way (a timeout)
stops counting as "in progress" when its invocation's time is up, so the next delivery can try
again. The wrapper is built once per container and kept (``clear()`` forgets it).

Each wrapped function gets its own persistence layer: Powertools configures a layer for the
first function that uses it, and a shared one would mix their settings.

Keys are prefixed with a stable name (``key_prefix``), not the Lambda function's name and
module path Powertools uses by default, so renaming a function or moving code never forgets
what was already done. A record's ``id`` is ``<key_prefix>#<sha256 of the key>``: the template
scopes each function's table access to its own prefix (``dynamodb:LeadingKeys``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from chimpbridge import settings
from chimpbridge.dal import aws
from chimpbridge.deadline import remaining_invocation_seconds
from chimpbridge.errors import Busy

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

ResultT = TypeVar("ResultT", bound=BaseModel)
# Outside an invocation (no deadline known), how long an attempt counts as in progress.
DEFAULT_IN_PROGRESS_MILLIS = 60_000


_wrappers: dict[tuple[Any, ...], Callable[..., Any]] = {}
_wrappers_lock = threading.Lock()


class InvocationClock:
    """Powertools asks the Lambda context for the time left, to date an in-progress record's
    expiry. ``@instrument`` keeps the invocation deadline; this reads it, so the logic using
    ``Once`` never needs the Lambda context itself."""

    def get_remaining_time_in_millis(self) -> int:
        remaining = remaining_invocation_seconds()
        return max(1, int(remaining * 1000)) if remaining is not None else DEFAULT_IN_PROGRESS_MILLIS


@dataclass(frozen=True)
class Once(Generic[ResultT]):
    """How one use case makes a function idempotent on ``key_path`` (JMESPath into its model).

    ``result_model`` has a ``duplicate`` field: a result served from the table comes back with
    it set. A call while another attempt with the same key runs raises ``Busy(busy_message)``.
    ``prompt`` uses the short-timeout DynamoDB client (dal/aws.py), for callers that must
    answer within seconds.
    """

    key_prefix: str
    key_path: str
    result_model: type[ResultT]
    busy_message: str
    prompt: bool = False

    def __post_init__(self) -> None:
        if "duplicate" not in self.result_model.model_fields:
            raise TypeError(f"{self.result_model.__name__} needs a duplicate field to mark repeats")

    def run(self, function: Callable[..., ResultT], *, expires_after_seconds: int, **data: BaseModel) -> ResultT:
        """``function(**data)`` unless it ran for this key before (``data``: its one model, by
        the keyword ``function`` takes it with)."""
        [keyword] = data
        return self.wrap(function, data_keyword=keyword, expires_after_seconds=expires_after_seconds)(**data)

    def wrap(
        self, function: Callable[..., ResultT], *, data_keyword: str, expires_after_seconds: int
    ) -> Callable[..., ResultT]:
        """``function`` made idempotent, built once per container (thread-safely: the email
        sender's threads share it) and kept."""
        table_name = settings.load(settings.IdempotencySettings).table_name
        spec = (self, function, data_keyword, expires_after_seconds, table_name)
        with _wrappers_lock:
            wrapper = _wrappers.get(spec)
            if wrapper is None:
                wrapper = _wrappers[spec] = self._build(function, data_keyword, expires_after_seconds, table_name)
        return wrapper

    def _build(
        self, function: Callable[..., ResultT], data_keyword: str, expires_after_seconds: int, table_name: str
    ) -> Callable[..., ResultT]:
        from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415 - boto3 underneath; see dal/aws.py
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )
        from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: PLC0415
            IdempotencyAlreadyInProgressError,
        )
        from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import (  # noqa: PLC0415
            PydanticSerializer,
        )

        def repeated(response: Any, idempotent_data: DataRecord) -> Any:
            return response.model_copy(update={"duplicate": True})

        config = IdempotencyConfig(
            event_key_jmespath=self.key_path,
            raise_on_no_idempotency_key=True,
            expires_after_seconds=expires_after_seconds,
            hash_function="sha256",
            response_hook=repeated,
            lambda_context=InvocationClock(),  # type: ignore[arg-type]
        )
        store = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=aws.dynamodb(prompt=self.prompt))
        # Powertools configures a layer lazily, on first use, and not thread-safely: it marks the
        # layer configured before it sets the key path. A second thread starting in between would
        # hash the whole payload instead of the key (another key: a duplicate email). Configure it
        # now, before any thread can use it; later calls return early.
        store.configure(config, key_prefix=self.key_prefix)
        wrapped = idempotent_function(
            function,
            data_keyword_argument=data_keyword,
            persistence_store=store,
            config=config,
            output_serializer=PydanticSerializer(model=self.result_model),
            key_prefix=self.key_prefix,
        )

        def run(**kwargs: Any) -> ResultT:
            try:
                return wrapped(**kwargs)  # type: ignore[no-any-return]
            except IdempotencyAlreadyInProgressError:
                raise Busy(self.busy_message) from None

        return run


def clear() -> None:
    """Forget the idempotent wrappers (tests that switch tables call this)."""
    with _wrappers_lock:
        _wrappers.clear()
