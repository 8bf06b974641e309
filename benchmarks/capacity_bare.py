"""The reference of the capacity benchmark: a bare media loop doing only a call's per-packet work.

One shared clock on an absolute 20 ms schedule; per stream and tick: build a 172-byte RTP packet,
protect it (AES_CM_128_HMAC_SHA1_80, pylibsrtp, its own keys) and ``sendto`` the peer; every socket is
drained with ``add_reader`` + non-blocking ``recvfrom`` and each datagram unprotected and its sequence
number checked. Nothing else: no RTCP, no sans-I/O session, no events, no SIP. Two of these loops, one per
process, face each other, so each side does what one side of a bidirectional call does.

A few streams are sampled exactly as the worker's are: the instant just after ``sendto`` returns and the
instant a datagram was read (before unprotecting it), each with the packet's RTP timestamp. The sampled
streams run their own copies of the send and drain functions, so the others carry no sampling cost.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
import time
from collections.abc import Callable
from typing import Final

import pylibsrtp

from .capacity_common import CLOCK_RATE, PTIME, TimingSamples

__all__ = ["BareLoop", "BareStream", "open_sockets", "stream_key"]

_HEADER: Final = struct.Struct("!BBHII")  # RFC 3550 §5.1: V=2, PT, sequence, timestamp, SSRC
_PAYLOAD: Final = b"\xff" * 160  # 20 ms of PCMU silence
_PCMU: Final = 0
_MAX_DATAGRAM: Final = 2048
_DRAIN_BATCH: Final = 64
_SAMPLES_PER_FRAME: Final = int(CLOCK_RATE * PTIME)


def stream_key(index: int, direction: str) -> bytes:
    """The 30-byte master key||salt both sides derive for stream ``index`` and ``direction`` ("up"/"down")."""
    return hashlib.sha256(f"capacity-{direction}-{index}".encode()).digest()[:30]


def _session(key_salt: bytes, *, inbound: bool) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=key_salt,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND if inbound else pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return pylibsrtp.Session(policy=policy)


def open_sockets(count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


class BareStream:
    """One call's worth of media in the bare loop."""

    __slots__ = (
        "failures",
        "highest",
        "peer",
        "received",
        "rx",
        "sample",
        "sent",
        "sequence",
        "sock",
        "ssrc",
        "tx",
    )

    def __init__(
        self, index: int, sock: socket.socket, peer: tuple[str, int], *, upstream: bool, sample: int | None
    ) -> None:
        self.sock = sock
        self.peer = peer
        self.tx = _session(stream_key(index, "up" if upstream else "down"), inbound=False)
        self.rx = _session(stream_key(index, "down" if upstream else "up"), inbound=True)
        self.ssrc = 0x1000_0000 + index * 2 + (0 if upstream else 1)
        self.sequence = 0
        self.sent = 0
        self.received = 0
        self.highest = -1
        self.failures = 0
        self.sample = sample
        """Index in the timing samples, or None when this stream is not sampled."""


class BareLoop:
    """Drives every stream from one task on the shared clock; ``lateness`` holds each tick's start delay."""

    def __init__(
        self, streams: list[BareStream], arrivals: TimingSamples, sends: TimingSamples | None = None
    ) -> None:
        self.streams = streams
        self.arrivals = arrivals
        self.sends = sends if sends is not None else TimingSamples(0, 0)
        self.lateness: list[float] = []
        self.record_lateness = False
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True

    def totals(self) -> dict[str, int]:
        streams = self.streams
        return {
            "sent": sum(s.sent for s in streams),
            "received": sum(s.received for s in streams),
            "expected": sum(s.highest + 1 for s in streams),
            "srtp_failures": sum(s.failures for s in streams),
        }

    async def run(self, on_start: Callable[[], None] = lambda: None) -> None:
        loop = asyncio.get_running_loop()
        plain = [stream for stream in self.streams if stream.sample is None]
        sampled = [stream for stream in self.streams if stream.sample is not None]
        for stream in plain:
            loop.add_reader(stream.sock.fileno(), self._drain, stream)
        for stream in sampled:
            loop.add_reader(stream.sock.fileno(), self._drain_sampled, stream)
        on_start()
        start = loop.time()
        tick = 0
        try:
            while not self._stopped:
                now = loop.time()
                due = start + tick * PTIME
                if now >= due:
                    if self.record_lateness:  # time.monotonic(): uvloop's loop.time() has 1 ms steps
                        self.lateness.append(time.monotonic() - due)
                    behind = int((now - due) / PTIME)
                    tick += 1 + behind  # a late loop skips ticks rather than sending a burst
                    timestamp = ((tick - 1) * _SAMPLES_PER_FRAME) & 0xFFFF_FFFF
                    for stream in sampled:
                        self._send_sampled(stream, timestamp)
                    for stream in plain:
                        self._send(stream, timestamp)
                # Always yield, even when late, so that the readers run.
                await asyncio.sleep(max(0.0, start + tick * PTIME - loop.time()))
        finally:
            for stream in self.streams:
                loop.remove_reader(stream.sock.fileno())

    @staticmethod
    def _send(stream: BareStream, timestamp: int) -> None:
        header = _HEADER.pack(0x80, _PCMU, stream.sequence & 0xFFFF, timestamp, stream.ssrc)
        try:
            stream.sock.sendto(stream.tx.protect(header + _PAYLOAD), stream.peer)
        except OSError:
            return
        stream.sequence += 1
        stream.sent += 1

    def _send_sampled(self, stream: BareStream, timestamp: int) -> None:
        sent = stream.sent
        self._send(stream, timestamp)
        if stream.sent != sent and stream.sample is not None:
            self.sends.add(stream.sample, timestamp, time.monotonic())

    def _drain(self, stream: BareStream) -> None:
        sock, rx = stream.sock, stream.rx
        for _ in range(_DRAIN_BATCH):
            try:
                data = sock.recv(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            try:
                plain = rx.unprotect(data)
            except pylibsrtp.Error:
                stream.failures += 1
                continue
            stream.received += 1
            sequence = (plain[2] << 8) | plain[3]  # streams here never run long enough to wrap
            if sequence > stream.highest:
                stream.highest = sequence

    def _drain_sampled(self, stream: BareStream) -> None:
        """:meth:`_drain` that stamps each datagram as it is read, as the worker's sampled legs do."""
        sock, rx, sample = stream.sock, stream.rx, stream.sample
        for _ in range(_DRAIN_BATCH):
            try:
                data = sock.recv(_MAX_DATAGRAM)
            except OSError:  # BlockingIOError included: nothing left
                return
            if sample is not None and len(data) >= 12:
                # SRTP leaves the header clear: bytes 4-7 are the RTP timestamp.
                self.arrivals.add(sample, int.from_bytes(data[4:8], "big"), time.monotonic())
            try:
                plain = rx.unprotect(data)
            except pylibsrtp.Error:
                stream.failures += 1
                continue
            stream.received += 1
            sequence = (plain[2] << 8) | plain[3]
            if sequence > stream.highest:
                stream.highest = sequence
