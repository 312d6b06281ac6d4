"""``python -m sandbox.mailchimp [--host 127.0.0.1] [--port 4010] [--seed-members N]``:
serve the sandbox until Ctrl-C (or SIGTERM). The port also comes from ``SANDBOX_PORT``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from types import FrameType

from sandbox.mailchimp.constants import MARKETING_API_KEY, TRANSACTIONAL_API_KEY
from sandbox.mailchimp.server import DEFAULT_HOST, DEFAULT_PORT, SandboxServer

logger = logging.getLogger("sandbox.mailchimp")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.mailchimp", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("SANDBOX_HOST", DEFAULT_HOST))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", DEFAULT_PORT)))
    parser.add_argument(
        "--seed-members", type=int, default=0, metavar="N", help="generate N members in the default audience"
    )
    parser.add_argument("--log-level", default=os.environ.get("SANDBOX_LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=arguments.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    server = SandboxServer(
        host=arguments.host, port=arguments.port, owns_process=True, seed_members=arguments.seed_members
    ).start()

    def stop_on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_signal)
    try:
        logger.info(
            "Marketing %s/3.0 (key %s), Transactional %s/api/1.3 (key %s), page %s/",
            server.url,
            MARKETING_API_KEY,
            server.url,
            TRANSACTIONAL_API_KEY,
            server.url,
        )
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
