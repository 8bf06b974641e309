"""``python -m media_worker``: the worker service; ``python -m media_worker call ...``: one call, no AWS.

The service reads its settings from the environment (``media_worker.settings.ENV`` names them) and refuses to
start, with exit status 2 and every bad variable named, when they are invalid.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from media_worker.settings import SettingsError, WorkerSettings

__all__ = ["main"]

EXIT_CONFIG: Final = 2
_USAGE: Final = """usage: python -m media_worker [serve]
       python -m media_worker call --uri URI --from +E164 [--ca-file F] [--duration S] [--media APP] [--json]

Without a command (or with "serve"): run the media worker service, configured from the environment.
"call": place one call without AWS and print how it went (see "call --help").
"""


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "call":
        return _run_call_command(args[1:])
    if args and args[0] in ("-h", "--help"):
        print(_USAGE, end="")
        return 0
    if args and args != ["serve"]:
        print(_USAGE, end="", file=sys.stderr)
        return EXIT_CONFIG
    return _run_service(os.environ if environ is None else environ)


def _run_call_command(args: list[str]) -> int:
    # Imported only here: the service never needs the one-off call tool.
    from media_worker import cli_call

    return cli_call.main(args)


def _run_service(environ: Mapping[str, str]) -> int:
    try:
        settings = WorkerSettings.from_env(environ)
        settings.require_service()
    except SettingsError as exc:
        print(f"media_worker: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    from aws_lambda_powertools import Logger

    from media_worker.net.tls import TlsConfigurationError
    from media_worker.service import SERVICE_NAME, serve

    logger = Logger(service=SERVICE_NAME)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(serve(settings, logger=logger))
    except TlsConfigurationError as exc:
        print(f"media_worker: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (a faster loop for hundreds of calls), else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


if __name__ == "__main__":
    sys.exit(main())
