"""``python -m emulator voice-connector``: the Voice Connector stand-in as a process.

Without ``--meetings-url`` it also hosts a chime-sdk-meetings emulator in the same process, so join tokens
from CreateAttendee work at once and deleting an attendee sends BYE. With ``--meetings-url`` it asks
a meetings emulator in another process to check tokens (``POST /_emulator/tokens/check``); joins, leaves and
attendee deletions are then not exchanged across processes.

Prints the SIP URI to dial on the first line of stdout and the CA file on the second.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from emulator.meetings_api import ENDPOINT_ENV_VAR, MeetingsEmulator
from emulator.vc_thread import VoiceConnectorThread
from emulator.voice_connector import DEFAULT_CODECS, DEFAULT_JOIN_NUMBER, DEFAULT_SUITES

__all__ = ["RemoteMeetings", "configure", "run"]


class RemoteMeetings:
    """Join-token checks against a meetings emulator in another process."""

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        if not url.startswith(("http://127.", "http://[::1]", "http://localhost")):
            raise ValueError("--meetings-url must be a loopback http URL of the meetings emulator")
        self._url = url.rstrip("/")
        self._timeout_s = timeout_s

    def _post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(  # noqa: S310 -- loopback http URL checked in __init__
            self._url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:  # noqa: S310 -- as above
                raw = response.read()
                return response.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as error:
            with error:
                return error.code, {}

    def is_token_valid(self, token: str) -> tuple[str, str] | None:
        status, body = self._post("/_emulator/tokens/check", {"JoinToken": token})
        if status != 200:
            return None
        return str(body.get("MeetingId")), str(body.get("AttendeeId"))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="SIP/TLS port; 0 picks a free one")
    parser.add_argument("--server-name", default="vc.localtest", help="host name in the server certificate")
    parser.add_argument("--join-number", default=DEFAULT_JOIN_NUMBER, help="meeting-join number")
    parser.add_argument("--workdir", type=Path, help="where ca.pem and the server key go (default: temp)")
    parser.add_argument("--meetings-url", help="use this meetings emulator instead of an in-process one")
    parser.add_argument(
        "--meetings-port", type=int, default=0, help="port of the in-process meetings emulator"
    )
    parser.add_argument(
        "--suite", action="append", help=f"answer preference (default: {list(DEFAULT_SUITES)})"
    )
    parser.add_argument(
        "--codec", action="append", help=f"answer preference (default: {list(DEFAULT_CODECS)})"
    )
    parser.add_argument("--tone-hz", type=float, default=1000.0, help="tone played to callers")


def run(args: argparse.Namespace) -> int:
    # Imported here so that `python -m emulator --help` stays quick.
    from emulator.__main__ import wait_for_stop_signal

    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "server_name": args.server_name,
        "join_number": args.join_number,
        "suites": tuple(args.suite or DEFAULT_SUITES),
        "codecs": tuple(args.codec or DEFAULT_CODECS),
        "tone_hz": args.tone_hz,
        "workdir": args.workdir,
    }
    meetings: MeetingsEmulator | None = None
    if args.meetings_url:
        options["token_validator"] = RemoteMeetings(args.meetings_url).is_token_valid
    else:
        meetings = MeetingsEmulator(args.host, args.meetings_port)
        meetings.start()
        options["meetings"] = meetings
    try:
        with VoiceConnectorThread(**options) as vc:
            host = f"[{args.host}]" if ":" in args.host else args.host
            print(f"sip:{args.join_number}@{host}:{vc.port};transport=tls", flush=True)
            print(vc.ca_file, flush=True)
            if meetings is not None:
                print(
                    f"chime-sdk-meetings emulator: export {ENDPOINT_ENV_VAR}={meetings.url}", file=sys.stderr
                )
            print(f"Voice Connector emulator: trust {vc.ca_file}", file=sys.stderr, flush=True)
            wait_for_stop_signal()
            for summary in vc.calls():
                print(json.dumps(summary), file=sys.stderr)
    finally:
        if meetings is not None:
            meetings.stop()
    return 0
