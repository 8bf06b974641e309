"""``python -m emulator <command>``: run the local stand-ins from a shell.

Each command is one entry in ``COMMANDS`` (name -> how to parse its options and how to run it); new
commands are added there. A server command prints its URL on the first line of stdout, then serves until
SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

from emulator.meetings_api import ENDPOINT_ENV_VAR, MeetingsEmulator
from emulator.meetings_store import MeetingsStore

__all__ = ["COMMANDS", "Command", "main", "wait_for_stop_signal"]


@dataclass(frozen=True, slots=True)
class Command:
    """One ``python -m emulator`` subcommand."""

    help: str
    """One line for ``--help``."""
    configure: Callable[[argparse.ArgumentParser], None]
    """Adds the command's options to its subparser."""
    run: Callable[[argparse.Namespace], int]
    """Runs the command; returns the process exit status."""


def wait_for_stop_signal() -> None:
    """Block until SIGINT or SIGTERM arrives, then restore the previous handlers."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        stop.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _add_listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port; 0 picks a free one (default: %(default)s)"
    )


def _configure_meetings(parser: argparse.ArgumentParser) -> None:
    _add_listen_options(parser)
    parser.add_argument("--region", default="us-east-1", help="control-plane region in meeting ARNs")
    parser.add_argument("--account", default="111122223333", help="account id in meeting ARNs")


def _run_meetings(args: argparse.Namespace) -> int:
    store = MeetingsStore(region=args.region, account=args.account)
    with MeetingsEmulator(args.host, args.port, store=store) as emulator:
        print(emulator.url, flush=True)
        print(
            f"chime-sdk-meetings emulator: export {ENDPOINT_ENV_VAR}={emulator.url}",
            file=sys.stderr,
            flush=True,
        )
        wait_for_stop_signal()
    return 0


def _configure_demo(parser: argparse.ArgumentParser) -> None:
    # Imported here: the demo pulls in the Chalice app, moto and the media stack.
    from emulator.demo import configure

    configure(parser)


def _run_demo(args: argparse.Namespace) -> int:
    # Imported here: the demo pulls in the Chalice app and moto, which the other commands do not need.
    from emulator.demo import run

    return run(args)


def _configure_voice_connector(parser: argparse.ArgumentParser) -> None:
    # Imported here: the Voice Connector pulls in the media stack, which the other commands do not need.
    from emulator.vc_cli import configure

    configure(parser)


def _run_voice_connector(args: argparse.Namespace) -> int:
    from emulator.vc_cli import run

    return run(args)


COMMANDS: dict[str, Command] = {
    "meetings": Command(
        help="chime-sdk-meetings API (rest-json) for boto3; prints its URL",
        configure=_configure_meetings,
        run=_run_meetings,
    ),
    "demo": Command(
        help="the whole pipeline on 127.0.0.1 (moto, emulators, handlers, worker); exit 0 if all held",
        configure=_configure_demo,
        run=_run_demo,
    ),
    "voice-connector": Command(
        help="Voice Connector for meeting joins: SIP/TLS + SRTP on 127.0.0.1; prints the URI and CA file",
        configure=_configure_voice_connector,
        run=_run_voice_connector,
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulator", description=__doc__.splitlines()[0] if __doc__ else None
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        command.configure(commands.add_parser(name, help=command.help, description=command.help))
    args = parser.parse_args(argv)
    return COMMANDS[args.command].run(args)


if __name__ == "__main__":
    raise SystemExit(main())
