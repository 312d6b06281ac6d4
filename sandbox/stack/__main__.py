"""``python -m sandbox.stack dev | invoke <LogicalId> <event.json> | env-file``.

dev     the whole product on loopback, in the foreground, until Ctrl-C.
invoke  one function, one event, result as JSON on stdout (logs on stderr). Uses the dev stack
        when one answers on the configured ports, else starts moto and the sandbox for the run.
        A result that says {"done": false} is passed back in until done (the export's loop).
env-file  print (or --write) .local-stack/sam-env.json for `sam local ... --env-vars` users;
        dev writes it at every start.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sandbox.stack.cfn_yaml import TemplateError
from sandbox.stack.cli_output import banner
from sandbox.stack.env_file import REPO_ROOT, SAM_ENV_FILE, render, write
from sandbox.stack.local_config import MOTO_PORT, SANDBOX_PORT, advertised_url, bind_host
from sandbox.stack.loop import invoke_until_done, waiting_while_busy
from sandbox.stack.s3_uploads import is_object_created, stage_upload
from sandbox.stack.services import moto_answers, sandbox_answers
from sandbox.stack.stack import LocalStack
from sandbox.stack.workers import FunctionError

DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"


def _write_line(text: str = "", stream: Any = None) -> None:
    target = stream or sys.stdout
    target.write(text + "\n")
    target.flush()


def run_dev(template: Path, start_sandbox: bool) -> int:
    started = time.monotonic()
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with LocalStack(template, start_sandbox=start_sandbox) as stack:
        _write_line(banner(stack, REPO_ROOT / "events", time.monotonic() - started))
        env_file = write(template)
        _write_line(f"sam local users (Docker): --env-vars {env_file.relative_to(REPO_ROOT)}")
        stop_requested.wait()
        _write_line("\nStopping the local stack...")
    _write_line("Stopped.")
    return 0


def _load_event(path: str) -> Any:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return json.loads(text)


def run_invoke(template: Path, logical_id: str, event_path: str, start_sandbox: bool) -> int:
    event = _load_event(event_path)
    host = bind_host()
    moto_url = advertised_url(host, MOTO_PORT.value())
    sandbox_url = advertised_url(host, SANDBOX_PORT.value())
    # A running `make dev` stack is used as it is, so the invocation sees (and changes) its data.
    attach_moto = moto_url if moto_answers(moto_url) else None
    attach_sandbox = sandbox_url if sandbox_answers(sandbox_url) else None
    where = "the running dev stack" if attach_moto else "a temporary stack"
    _write_line(f"invoking {logical_id} against {where}", sys.stderr)
    stack = LocalStack(
        template,
        api_port=0,
        moto_port=0,
        sandbox_port=0,
        serve_api=False,
        poll_queues=False,
        attach_moto_url=attach_moto,
        attach_sandbox_url=attach_sandbox,
        start_sandbox=start_sandbox,
    )
    with stack:
        if is_object_created(event):
            event, said = stage_upload(stack.client("s3"), event, None if event_path == "-" else Path(event_path))
            if said:
                _write_line(said, sys.stderr)
        try:
            # A result that says {"done": false} is fed back in, as the export state machine does.
            payload = invoke_until_done(
                lambda current: waiting_while_busy(lambda: stack.invoke(logical_id, current)),
                event,
                on_continue=lambda count, result: _write_line(
                    f"{logical_id}: not done after invocation {count}; invoking again with its result", sys.stderr
                ),
            )
        except FunctionError as error:
            _write_line(json.dumps(error.result.payload, indent=2))
            return 1
    _write_line(json.dumps(payload, indent=2))
    return 0


def run_env_file(template: Path, destination: Path | None) -> int:
    if destination is None:
        sys.stdout.write(render(template))
    else:
        _write_line(f"wrote {write(template, destination)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.stack", description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="SAM template (default: %(default)s)")
    parser.add_argument("--no-sandbox", action="store_true", help="do not start the Mailchimp sandbox")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dev", help="run the whole product on loopback until Ctrl-C")
    invoke = commands.add_parser("invoke", help="run one function with one event")
    invoke.add_argument("logical_id", help="the function's logical id in the template, e.g. HealthFunction")
    invoke.add_argument("event", help="event JSON file, or - for stdin")
    env_file = commands.add_parser("env-file", help="the env-vars file for sam local (Docker)")
    env_file.add_argument(
        "--write",
        nargs="?",
        type=Path,
        const=SAM_ENV_FILE,
        metavar="PATH",
        help=f"write the file (default {SAM_ENV_FILE.relative_to(REPO_ROOT)}) instead of printing it",
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    try:
        if arguments.command == "dev":
            return run_dev(arguments.template, start_sandbox=not arguments.no_sandbox)
        if arguments.command == "invoke":
            return run_invoke(
                arguments.template, arguments.logical_id, arguments.event, start_sandbox=not arguments.no_sandbox
            )
        return run_env_file(arguments.template, arguments.write)
    except (TemplateError, KeyError, OSError, ValueError) as error:
        # What a person can fix (a port in use, a typo in FN or EVENT, a template the stack cannot
        # run) reads better as one line than as a traceback.
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        _write_line(f"error: {message}", sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
