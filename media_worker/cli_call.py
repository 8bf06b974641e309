"""``python -m media_worker call``: place one call without AWS and report how it went.

Settings come from the same environment variables as the service (MEDIA_BIND_IP, RTP_PORT_MIN/MAX,
MEDIA_PUBLIC_IP, SIP_CA_FILE, SIP_DIGEST_USERNAME/PASSWORD, MEDIA_TIMEOUT_SECONDS); the options below win.
The URI usually carries the join token: it is sent on the wire only and printed redacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from typing import TextIO

from chalicelib.contract import MEDIA_APPS
from media_worker.audio import read_wav_file, write_wav_file

from .call import Call
from .call_plan import DEFAULT_CODECS, DEFAULT_SUITES, CallPlan, CallPlanError
from .net.media_engine import MediaEngine, PortAllocator
from .net.sip_pool import SipConnectionPool
from .net.tls import TlsConfigurationError, client_context
from .outcomes import CallResult, EndReason
from .settings import SettingsError, WorkerSettings
from .sip import DigestCredentials, redact_uri

__all__ = ["build_parser", "format_result", "main", "run_call_command"]

EXIT_CONNECTED = 0
EXIT_NOT_CONNECTED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m media_worker call",
        description="Place one SIP/TLS + SRTP call (e.g. a Chime meeting join) and print how it went.",
    )
    parser.add_argument("--uri", required=True, help="SIP URI to dial, e.g. sip:+17035550122@<host>;...")
    parser.add_argument("--from", dest="from_number", required=True, help="E.164 caller number")
    parser.add_argument("--ca-file", help="extra CA certificates (PEM); verification is always on")
    parser.add_argument("--duration", type=float, default=30.0, help="hang up after S seconds connected")
    parser.add_argument("--ring-timeout", type=float, default=60.0, help="cancel if unanswered after S s")
    parser.add_argument("--media", choices=MEDIA_APPS, default="silence", help="what the call plays/does")
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="media app option (repeatable)"
    )
    parser.add_argument("--codec", action="append", help="offer this codec (repeatable, in preference order)")
    parser.add_argument("--suite", action="append", help="offer this SRTP suite (repeatable)")
    parser.add_argument("--dtmf", help="DTMF digits to send once connected")
    parser.add_argument("--meeting-id", help="add X-chime-meeting-id to the To header")
    parser.add_argument("--record-wav", help="with --media record: write what was heard to this WAV file")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def _option_value(text: str) -> str | int | float | bool:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text


def _media_options(pairs: Sequence[str]) -> dict[str, object]:
    options: dict[str, object] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise CallPlanError(f"--option takes KEY=VALUE, got {pair!r}")
        options[key] = _option_value(value)
    return options


def format_result(result: CallResult, target: str) -> str:
    """The human-readable report."""
    media = result.media
    status = "no SIP final response" if result.sip_status is None else f"SIP {result.sip_status}"
    setup = (
        "" if result.setup_latency_s is None else f", answered after {result.setup_latency_s * 1000:.0f} ms"
    )
    lines = [
        f"Call to {target}",
        f"  ended:       {result.end_reason.value} ({status}){setup}",
        f"  connected:   {'yes' if result.connected else 'no'}, {result.duration_s:.1f} s",
    ]
    if result.detail:
        lines.append(f"  detail:      {redact_uri(result.detail)}")
    lines += [
        f"  codec:       {result.codec or '-'}",
        f"  SRTP suite:  {result.suite or '-'}",
        f"  packets:     sent {media.packets_sent}, received {media.packets_received + media.srtp_failures}, "
        f"decrypted {media.packets_received}",
        f"  SRTP fails:  {media.srtp_failures}",
        f"  jitter:      {media.jitter_ms:.1f} ms",
        f"  loss:        {media.loss_fraction * 100:.2f} % ({media.packets_lost} packets)",
        f"  MOS:         {media.mos:.2f}",
    ]
    return "\n".join(lines)


def _plan(args: argparse.Namespace, settings: WorkerSettings) -> CallPlan:
    credentials = None
    if settings.sip_username is not None and settings.sip_password is not None:
        credentials = DigestCredentials(settings.sip_username, settings.sip_password.get_secret_value())
    return CallPlan.for_uri(
        args.uri,
        args.from_number,
        codecs=args.codec or DEFAULT_CODECS,
        suites=args.suite or DEFAULT_SUITES,
        media_app=args.media,
        media_options=_media_options(args.option),
        ring_timeout_s=args.ring_timeout,
        max_duration_s=args.duration,
        dtmf=args.dtmf,
        credentials=credentials,
        meeting_id=args.meeting_id,
    )


async def run_call_command(argv: Sequence[str], *, out: TextIO | None = None) -> int:
    """Run the ``call`` subcommand; returns the exit status (0 connected, 1 not connected, 2 usage)."""
    stdout = out or sys.stdout
    args = build_parser().parse_args(list(argv))
    try:
        settings = WorkerSettings.from_env(os.environ)
        plan = _plan(args, settings)
        ssl_context = client_context(ca_file=args.ca_file or settings.sip_ca_file)
    except (SettingsError, CallPlanError, TlsConfigurationError, ValueError) as exc:
        print(f"error: {redact_uri(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    result = await _place(plan, settings, ssl_context)
    target = plan.summary()["request_uri"]
    if args.json:
        print(json.dumps({"target": target, **result.summary()}, indent=2), file=stdout)
    else:
        print(format_result(result, target), file=stdout)
    if args.record_wav and result.recording is not None:
        write_wav_file(args.record_wav, result.recording)
    return EXIT_CONNECTED if result.connected else EXIT_NOT_CONNECTED


async def _place(plan: CallPlan, settings: WorkerSettings, ssl_context: ssl.SSLContext) -> CallResult:
    pool = SipConnectionPool(ssl_context=ssl_context)
    engine = MediaEngine()
    clock = asyncio.create_task(engine.run(), name="media-clock")
    call = Call(
        plan,
        pool=pool,
        engine=engine,
        ports=PortAllocator(settings.media_bind_ip, settings.rtp_port_min, settings.rtp_port_max),
        media_public_ip=settings.media_public_ip,
        media_timeout_s=settings.media_timeout_s,
        load_audio=read_wav_file,
    )
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(signum, call.hangup, EndReason.LOCAL_HANGUP)
            handled.append(signum)
    try:
        return await call.run()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        await pool.close()
        engine.stop()
        await clock


def main(argv: Sequence[str]) -> int:
    """Entry point for ``python -m media_worker call ...``."""
    return asyncio.run(run_call_command(argv))
