"""The engine the capacity benchmark observes: the production media engine with a few sampled legs, and the
ability to pause so that the reference loop can drive the same calls.

The sampled legs stamp through a socket proxy and run their own copies of the per-packet methods
(:class:`SampledLeg`), so the production code path of every other leg is untouched, as the bare loop's
sampled streams run their own copies of its functions.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
import types
from collections.abc import Callable
from typing import Any, TypeVar

from media_worker.net.media_engine import MediaEngine, MediaLeg

from .capacity_common import PTIME, TimingSamples

__all__ = ["ObservedEngine", "SampledLeg", "StampingSocket", "unwrapped"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _own_copy(function: _F) -> _F:
    """*function* over a fresh code object. CPython's specialising interpreter (PEP 659) keeps its inline
    caches in the code object, so the sampled legs' proxy sockets cannot make the production call sites
    polymorphic for every other leg."""
    copy = types.FunctionType(
        function.__code__.replace(),
        function.__globals__,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    return copy  # type: ignore[return-value]  # same signature as *function*


class SampledLeg(MediaLeg):
    """A sampled leg: the production per-packet methods, in copies only the sampled legs run."""

    __slots__ = ()

    tick = _own_copy(MediaLeg.tick)
    on_readable = _own_copy(MediaLeg.on_readable)


class StampingSocket:
    """Proxy of a sampled leg's RTP socket: stamps each RTP datagram when ``sendto`` returns (sends) and when
    it is read, before SRTP (arrivals)."""

    __slots__ = ("_arrivals", "_sends", "sock", "stream")

    def __init__(
        self, sock: socket.socket, sends: TimingSamples, arrivals: TimingSamples, stream: int
    ) -> None:
        self.sock = sock
        self._sends = sends
        self._arrivals = arrivals
        self.stream = stream
        """Index in the timing samples."""

    # The RTP socket carries only RTP here (RTCP has its own port), so every datagram is stamped as it is;
    # SRTP leaves the header clear: bytes 4-7 are the RTP timestamp, i.e. the frame's clock tick.

    def sendto(self, data: bytes, address: tuple[str, int]) -> int:
        sent = self.sock.sendto(data, address)
        self._sends.add(self.stream, int.from_bytes(data[4:8], "big"), time.monotonic())
        return sent

    def recv_into(self, buffer: bytearray) -> int:
        size = self.sock.recv_into(buffer)
        # time.monotonic(): uvloop's loop.time() has 1 ms steps.
        self._arrivals.add(self.stream, int.from_bytes(buffer[4:8], "big"), time.monotonic())
        return size

    def recvfrom_into(self, buffer: bytearray) -> tuple[int, Any]:
        size, source = self.sock.recvfrom_into(buffer)
        self._arrivals.add(self.stream, int.from_bytes(buffer[4:8], "big"), time.monotonic())
        return size, source

    def fileno(self) -> int:
        return self.sock.fileno()

    def getsockname(self) -> Any:
        return self.sock.getsockname()

    def close(self) -> None:
        self.sock.close()


class ObservedEngine(MediaEngine):
    """The real engine, which hands a few legs to the samplers and can pause for the reference loop."""

    def __init__(self, arrivals: TimingSamples, sends: TimingSamples) -> None:
        super().__init__(ptime=PTIME)
        self.legs: list[MediaLeg] = []
        """Every leg ever added, in order (for cumulative counters)."""
        self.live: list[MediaLeg] = []
        self.arrivals = arrivals
        self.sends = sends
        self._clock: asyncio.Task[None] | None = None
        self._epoch: float | None = None

    def add(self, leg: MediaLeg) -> None:
        stream = len(self.legs)
        if stream < self.sends.streams:
            # Installed before the engine registers the socket, so the leg reads and sends through it.
            leg.__class__ = SampledLeg
            leg.rtp_sock = StampingSocket(leg.rtp_sock, self.sends, self.arrivals, stream)  # type: ignore[assignment]
        self.legs.append(leg)
        self.live.append(leg)
        super().add(leg)

    def remove(self, leg: MediaLeg) -> None:
        if leg in self.live:
            self.live.remove(leg)
        super().remove(leg)

    def start_clock(self) -> None:
        self._stopped = False
        start = self.next_tick()
        self._clock = asyncio.get_running_loop().create_task(self.run(start), name="capacity-media-clock")

    def next_tick(self) -> float:
        """The next instant on the run's 20 ms grid. Every clock of the run (the engine's each time it
        resumes, the reference loop's) ticks on one grid, so each keeps the same phase against the
        emulator's clock: how the far end's packets interleave with our ticks is the same on both sides."""
        now = asyncio.get_running_loop().time()
        if self._epoch is None:
            self._epoch = now
        return self._epoch + math.ceil((now - self._epoch) / PTIME) * PTIME

    async def stop_clock(self) -> None:
        self.stop()
        if self._clock is not None:
            await self._clock
            self._clock = None

    async def pause(self) -> None:
        """Stop the clock and stop reading every live leg's sockets (they stay open)."""
        await self.stop_clock()
        loop = asyncio.get_running_loop()
        for leg in self.live:
            loop.remove_reader(leg.rtp_sock.fileno())
            loop.remove_reader(leg.rtcp_sock.fileno())

    def resume(self) -> None:
        for leg in self.live:
            super().add(leg)  # registers the readers again
        self.start_clock()


def unwrapped(leg: MediaLeg) -> tuple[socket.socket, int | None]:
    """A leg's real RTP socket and its sample index (None when the leg is not sampled)."""
    sock: socket.socket | StampingSocket = leg.rtp_sock
    if isinstance(sock, StampingSocket):
        return sock.sock, sock.stream
    return sock, None
