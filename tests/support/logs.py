"""The layer's log lines as Lambda would print them: its one logger, through its own formatter
(so masked as in production), written into a buffer a test reads."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def log_buffer() -> Iterator[io.StringIO]:
    """A buffer holding every line the layer's logger writes inside the block."""
    from chimpbridge.observability import logger  # noqa: PLC0415 - the layer's logger, as the functions use it

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    try:
        yield buffer
    finally:
        logger.removeHandler(handler)


def last_line(buffer: io.StringIO) -> str:
    """The last line written into the buffer."""
    return buffer.getvalue().strip().splitlines()[-1]
