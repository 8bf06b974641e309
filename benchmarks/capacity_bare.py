"""The reference of the capacity benchmark: a bare media loop doing only a call's per-packet work.

One shared clock on an absolute 20 ms schedule; per stream and tick: build a 172-byte RTP packet,
protect it and ``sendto`` the far end; every socket is drained with ``add_reader`` + non-blocking ``recv``
(the drain loop of the reference measurements) and each datagram unprotected and its sequence number
tracked. Nothing else: no RTCP, no sans-I/O session, no statistics, no events.

It runs on the worker's own calls, while the worker's media for them is paused: the same sockets, the same
far end (the emulator) and each call's own SRTP context, so both loops face the same peer, the same packet
arrival pattern and the same process state, pay the same crypto per packet, and differ only in the media
code around it. The call's receive context carries on the far end's stream (a receiver that joined it
afresh would not know its rollover counter, RFC 3711 §3.3.1); we send under an SSRC of our own, which the
emulator takes as a new stream.

A few streams are sampled exactly as the worker's are: the instant just after ``sendto`` returns and the
instant a datagram was read (before unprotecting it), each with the packet's RTP timestamp. The sampled
streams run their own copies of the send and drain functions, so the others carry no sampling cost.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable
from typing import Final

from media_worker.rtp.srtp import SrtpError

from .capacity_common import CLOCK_RATE, PTIME, TimingSamples

__all__ = ["BareLoop", "BareStream"]

_HEADER: Final = struct.Struct("!BBHII")  # RFC 3550 §5.1: V=2, PT, sequence, timestamp, SSRC
_PAYLOAD: Final = b"\xff" * 160  # 20 ms of PCMU silence
_PCMU: Final = 0
_MAX_DATAGRAM: Final = 2048
_DRAIN_BATCH: Final = 64
_SAMPLES_PER_FRAME: Final = int(CLOCK_RATE * PTIME)


class BareStream:
    """One call's worth of media in the bare loop, on a socket it does not own."""

    __slots__ = (
        "failures",
        "highest",
        "last_sequence",
        "peer",
        "protect",
        "received",
        "sample",
        "sent",
        "sequence",
        "sock",
        "ssrc",
        "unprotect",
    )

    def __init__(
        self,
        sock: socket.socket,
        peer: tuple[str, int],
        *,
        protect: Callable[[bytes], bytes],
        unprotect: Callable[[bytes], bytes],
        ssrc: int,
        sample: int | None,
    ) -> None:
        self.sock = sock
        self.peer = peer
        self.protect = protect
        self.unprotect = unprotect
        self.ssrc = ssrc
        self.sequence = 0
        self.sent = 0
        self.received = 0
        self.highest = -1
        """Extended highest sequence number received, counted from the first one (-1: none yet)."""
        self.last_sequence = 0
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

    async def run(self, start: float) -> None:
        """Tick at ``start + n * PTIME`` (a ``loop.time()`` instant) until :meth:`stop`; may run again
        afterwards (the streams carry on where they were)."""
        self._stopped = False
        loop = asyncio.get_running_loop()
        plain = [stream for stream in self.streams if stream.sample is None]
        sampled = [stream for stream in self.streams if stream.sample is not None]
        for stream in plain:
            loop.add_reader(stream.sock.fileno(), self._drain, stream)
        for stream in sampled:
            loop.add_reader(stream.sock.fileno(), self._drain_sampled, stream)
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
            stream.sock.sendto(stream.protect(header + _PAYLOAD), stream.peer)
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
        sock, unprotect = stream.sock, stream.unprotect
        for _ in range(_DRAIN_BATCH):
            try:
                data = sock.recv(_MAX_DATAGRAM)
            except OSError:  # BlockingIOError included: nothing left
                return
            try:
                plain = unprotect(data)
            except SrtpError:
                stream.failures += 1
                continue
            stream.received += 1
            # The highest sequence number, extended across 16-bit wraps; reordering never advances it.
            sequence = (plain[2] << 8) | plain[3]
            delta = (sequence - stream.last_sequence) & 0xFFFF
            if stream.highest < 0:
                stream.highest, stream.last_sequence = 0, sequence
            elif delta < 0x8000:
                stream.highest += delta
                stream.last_sequence = sequence

    def _drain_sampled(self, stream: BareStream) -> None:
        """:meth:`_drain` that stamps each datagram as it is read, as the worker's sampled legs do."""
        sock, unprotect, sample = stream.sock, stream.unprotect, stream.sample
        for _ in range(_DRAIN_BATCH):
            try:
                data = sock.recv(_MAX_DATAGRAM)
            except OSError:  # BlockingIOError included: nothing left
                return
            if sample is not None and len(data) >= 12:
                # SRTP leaves the header clear: bytes 4-7 are the RTP timestamp.
                self.arrivals.add(sample, int.from_bytes(data[4:8], "big"), time.monotonic())
            try:
                plain = unprotect(data)
            except SrtpError:
                stream.failures += 1
                continue
            stream.received += 1
            # The highest sequence number, extended across 16-bit wraps; reordering never advances it.
            sequence = (plain[2] << 8) | plain[3]
            delta = (sequence - stream.last_sequence) & 0xFFFF
            if stream.highest < 0:
                stream.highest, stream.last_sequence = 0, sequence
            elif delta < 0x8000:
                stream.highest += delta
                stream.last_sequence = sequence
