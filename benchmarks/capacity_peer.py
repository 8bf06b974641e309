"""The far end of the capacity benchmark: the Voice Connector emulator as its own process on its own core.

    capacity_peer.py vc --core 1 [--peer-app silence|tone]

It prints one JSON line when ready (port, CA file), then answers one JSON line per request read from stdin
(``mark``: CPU and media counters now; ``quit``). It runs on uvloop when installed, without a meetings
emulator (any non-empty join token is accepted). It is the far end of the worker's calls and of the
reference loop alike, since the reference runs on the same calls.

``--peer-app silence`` (the default) replaces the emulator's tone-and-record media app with one that sends
pre-encoded silence and ignores what it hears: the emulator then costs what the worker costs per call and
keeps up on one core; ``tone`` keeps the real app (tone out, every frame decoded and recorded).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a plain script: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

from benchmarks.capacity_common import CpuMark, pin_to
from emulator import vc_call
from emulator.vc_media import ToneRecorderApp
from emulator.voice_connector import VoiceConnectorEmulator

__all__ = ["main"]

_VC_RTP_PORTS = (30000, 39999)


class SilentPeerApp(ToneRecorderApp):
    """Sends silence (pre-encoded by the media leg) and ignores what it hears."""

    name = "silent-peer"
    wants_audio = False

    def next_frame(self) -> bytes | None:
        return None

    def on_audio(self, pcm: bytes) -> None:
        return None


def _emit(body: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(body) + "\n")
    sys.stdout.flush()


def _read_commands(loop: asyncio.AbstractEventLoop, handle: Callable[[dict[str, Any]], None]) -> None:
    """stdin lines to ``handle`` on the loop; end of input counts as ``quit``."""

    def reader() -> None:
        for line in sys.stdin:
            if line.strip():
                loop.call_soon_threadsafe(handle, json.loads(line))
        loop.call_soon_threadsafe(handle, {"command": "quit"})

    threading.Thread(target=reader, name="capacity-peer-stdin", daemon=True).start()


def _mark(extra: dict[str, Any]) -> dict[str, Any]:
    mark = CpuMark.now()
    return {"cpu_s": mark.cpu_s, "wall_s": mark.wall_s, **extra}


def _emulator_media(emulator: VoiceConnectorEmulator) -> dict[str, Any]:
    """What the emulator's legs saw of the worker's streams (RFC 3550 statistics, cumulative)."""
    received = expected = sent = failures = connected = 0
    jitter_ms: list[float] = []
    for record in emulator.calls:
        leg = record.leg
        session = None if leg is None else leg.session
        if session is None:
            continue
        connected += 1
        counters = session.counters
        received += counters.packets_received
        sent += counters.packets_sent
        failures += counters.srtp_auth_failures + counters.srtp_replays + counters.srtp_malformed
        receiver = session.receiver
        if receiver is not None:
            expected += receiver.expected
            jitter_ms.append(receiver.jitter / 8.0)  # RTP units at 8 kHz -> ms
    return {
        "legs": connected,
        "received": received,
        "expected": expected,
        "sent": sent,
        "srtp_failures": failures,
        "jitter_ms": jitter_ms,
    }


async def _serve_vc(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    async with VoiceConnectorEmulator(rtp_ports=_VC_RTP_PORTS) as emulator:

        def handle(request: dict[str, Any]) -> None:
            if request["command"] == "mark":
                _emit(_mark(_emulator_media(emulator)))
            else:
                done.set()

        _read_commands(loop, handle)
        _emit({"port": emulator.port, "ca_file": str(emulator.ca_file)})
        await done.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("role", choices=("vc",))
    parser.add_argument("--core", type=int, default=None, help="CPU to pin this process to")
    parser.add_argument("--peer-app", choices=("silence", "tone"), default="silence")
    args = parser.parse_args(argv)
    pin_to(args.core)
    if args.peer_app == "silence":
        # Benchmark-only substitution of the emulator's media app (see the module docstring).
        vars(vc_call)["ToneRecorderApp"] = SilentPeerApp
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve_vc(args))
    else:
        uvloop.run(_serve_vc(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
