"""A local Mailchimp: the Marketing API (``/3.0``), the Transactional (Mandrill) API
(``/api/1.0`` and ``/api/1.3``), a control API (``/_sandbox``) and a web page (``/``).

The official SDKs talk to it over HTTP. Tests, benchmarks and the local stack use it, and
people use it to try the bundle without a Mailchimp account. See docs/sandbox.md.

    from sandbox.mailchimp import SandboxServer
    with SandboxServer(port=0) as server:
        ...  # server.url == "http://127.0.0.1:NNNN"
"""

from sandbox.mailchimp.constants import (
    DEFAULT_LIST_ID,
    DEFAULT_LIST_NAME,
    MARKETING_API_KEY,
    OAUTH_ACCESS_TOKEN,
    OAUTH_SERVER_PREFIX,
    TRANSACTIONAL_API_KEY,
    VERIFIED_SENDING_DOMAINS,
)
from sandbox.mailchimp.server import SandboxServer

__all__ = [
    "DEFAULT_LIST_ID",
    "DEFAULT_LIST_NAME",
    "MARKETING_API_KEY",
    "OAUTH_ACCESS_TOKEN",
    "OAUTH_SERVER_PREFIX",
    "TRANSACTIONAL_API_KEY",
    "VERIFIED_SENDING_DOMAINS",
    "SandboxServer",
]
