"""UDP media for every call in the process, paced by ONE shared media clock.

Costs measured on this class of machine decide the shape (see the benchmarks): one task per call costs about
twice the CPU of a shared ticker, and the default asyncio datagram transport reads 256 KiB per packet, so each
socket is read with ``add_reader`` + non-blocking ``recv_into`` (uvloop supports the same calls). A packet
never becomes a bytes object on its way: it is read into the session's SRTP buffer and unprotected there,
and sent from the buffer it was built and protected in. Every call owns an RTP/RTCP socket pair from a
configured port range (RFC 3550 §11: RTP even, RTCP the next odd port).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from ..audio import Codec
from ..media_apps import MediaApp, SilenceApp
from ..negotiation import MediaParams
from ..quality import estimate_mos
from ..rtp import MediaClock, MediaSession
from ..rtp.events import MediaEvent, MediaReceived

__all__ = ["NO_MEDIA", "MediaEngine", "MediaLeg", "MediaStats", "NoFreePortsError", "PortAllocator"]

_MAX_DATAGRAM: Final = 2048
_DRAIN_BATCH: Final = 64
"""Datagrams read per wake-up before yielding to other callbacks."""


class NoFreePortsError(RuntimeError):
    """Every RTP port pair in the configured range is taken: raise RTP_PORT_MAX or lower MAX_CALLS."""


class PortAllocator:
    """Hands out bound, non-blocking (RTP, RTCP) UDP socket pairs from ``[port_min, port_max]``."""

    def __init__(self, bind_ip: str, port_min: int, port_max: int) -> None:
        self._bind_ip = bind_ip
        self._first = port_min + (port_min % 2)
        self._last = port_max - 1
        self._cursor = self._first
        family = socket.AF_INET6 if ":" in bind_ip else socket.AF_INET
        self._family = family

    def open_pair(self) -> tuple[socket.socket, socket.socket]:
        count = (self._last - self._first) // 2 + 1
        for _ in range(max(count, 0)):
            port = self._cursor
            self._cursor = self._first if port + 2 > self._last else port + 2
            rtp = socket.socket(self._family, socket.SOCK_DGRAM)
            rtcp = socket.socket(self._family, socket.SOCK_DGRAM)
            try:
                rtp.bind((self._bind_ip, port))
                rtcp.bind((self._bind_ip, port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                continue
            rtp.setblocking(False)
            rtcp.setblocking(False)
            return rtp, rtcp
        raise NoFreePortsError(f"no free RTP port pair in {self._first}-{self._last + 1}")


@dataclass(frozen=True, slots=True)
class MediaStats:
    """End-of-call (or live) media figures for logs, metrics and the call record."""

    packets_sent: int
    packets_received: int
    packets_lost: int
    loss_fraction: float
    jitter_ms: float
    rtt_ms: float | None
    srtp_failures: int
    """RTP packets refused by SRTP (authentication, replay, malformed): lost audio."""
    mos: float
    srtcp_failures: int = 0
    """SRTCP packets refused: lost reports only."""
    send_errors: int = 0
    """Datagrams the socket refused to send (full buffer, unreachable peer): lost on our side."""

    def after(self, earlier: MediaStats) -> MediaStats:
        """These figures with an earlier session's counts added (a call whose SRTP was re-keyed); quality
        figures (jitter, RTT, MOS) stay those of the current session."""
        return replace(
            self,
            packets_sent=earlier.packets_sent + self.packets_sent,
            packets_received=earlier.packets_received + self.packets_received,
            packets_lost=earlier.packets_lost + self.packets_lost,
            srtp_failures=earlier.srtp_failures + self.srtp_failures,
            srtcp_failures=earlier.srtcp_failures + self.srtcp_failures,
            send_errors=earlier.send_errors + self.send_errors,
        )

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "packets_sent": self.packets_sent,
            "packets_received": self.packets_received,
            "packets_lost": self.packets_lost,
            "loss_pct": round(self.loss_fraction * 100, 2),
            "jitter_ms": round(self.jitter_ms, 2),
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 1),
            "srtp_failures": self.srtp_failures,
            "srtcp_failures": self.srtcp_failures,
            "send_errors": self.send_errors,
            "mos": self.mos,
        }


NO_MEDIA: Final = MediaStats(0, 0, 0, 0.0, 0.0, None, 0, 1.0)
"""The figures of a call that never had media."""


class MediaLeg:
    """One call's media: its socket pair and, once negotiated, its sans-I/O session and media app."""

    __slots__ = (
        "_app",
        "_codec",
        "_events",
        "_latched",
        "_remote_rtcp",
        "_remote_rtp",
        "_sender",
        "_silence",
        "_timer_due",
        "on_event",
        "params",
        "rtcp_sock",
        "rtp_port",
        "rtp_sock",
        "send_errors",
        "session",
    )

    def __init__(self, rtp_sock: socket.socket, rtcp_sock: socket.socket) -> None:
        self.rtp_sock = rtp_sock
        self.rtcp_sock = rtcp_sock
        self.rtp_port: int = rtp_sock.getsockname()[1]
        self.session: MediaSession | None = None
        self.params: MediaParams | None = None
        """The negotiated stream this leg runs (keys inside: hand it on, never log it)."""
        self.on_event: Callable[[MediaEvent], None] = lambda event: None
        self._codec: Codec | None = None
        self._app: MediaApp | None = None
        self._silence = b""
        self._remote_rtp: tuple[str, int] = ("0.0.0.0", 0)  # noqa: S104 - placeholder until negotiated
        self._remote_rtcp: tuple[str, int] = ("0.0.0.0", 0)  # noqa: S104 - placeholder until negotiated
        self._sender: tuple[MediaApp | None, Codec] | None = None
        """The app (None for :class:`SilenceApp`, which never has a frame to ask for) and codec of each
        tick's frame while we may send; None when on hold or not started."""
        self._latched = False
        self._events: deque[MediaEvent] = deque()
        self._timer_due = -math.inf
        """When the session's timer is due, cached: receiving only ever postpones it, so an early
        ``handle_timer`` is at worst a no-op; events (inactivity, resume) and ``start`` refresh it."""
        self.send_errors = 0

    def start(self, params: MediaParams, session: MediaSession, codec: Codec, app: MediaApp) -> None:
        """Begin media with negotiated parameters (also used after a re-INVITE changed them)."""
        self.session = session
        self._codec = codec
        self._app = app
        self._silence = codec.encode(bytes(2 * 160))
        self._events = session.pending_events
        self._timer_due = -math.inf
        self.update(params)

    def update(self, params: MediaParams) -> None:
        """Apply a re-negotiation that kept the keys: new remote address or direction (hold/resume)."""
        self.params = params
        self._remote_rtp = params.remote_rtp
        self._remote_rtcp = params.remote_rtcp
        self._latched = False
        app, codec = self._app, self._codec
        self._sender = None
        if params.direction.sends and app is not None and codec is not None:
            self._sender = (None if isinstance(app, SilenceApp) else app, codec)
        if self.session is not None:
            # Only an app that listens needs every packet as an event (and its payload decoded).
            self.session.deliver_media = params.direction.receives and app is not None and app.wants_audio

    def tick(self, now: float, frames: int, skipped: int) -> None:
        session = self.session
        if session is None:
            return
        if skipped:
            session.skip_frames(skipped)
        sender = self._sender
        queued = False
        if sender is not None:
            app, codec = sender
            for _ in range(frames):
                frame = None if app is None else app.next_frame()
                datagram = session.protect_frame(self._silence if frame is None else codec.encode(frame), now)
                if datagram is None:
                    queued = True  # a DTMF packet went to the queue instead
                    continue
                try:
                    self.rtp_sock.sendto(datagram, self._remote_rtp)
                except OSError:
                    self.send_errors += 1  # a full socket buffer or unreachable peer drops one packet only
        else:
            session.skip_frames(frames)
        if now >= self._timer_due:
            session.handle_timer(now)
            timer = session.get_timer()
            self._timer_due = math.inf if timer is None else timer
            queued = True
        if queued:
            self.flush(now)
        if self._events:
            self._dispatch_events()

    def on_readable(self, sock: socket.socket, clock: Callable[[], float]) -> None:
        """The event loop's reader callback for both sockets; *clock* is the engine's ``loop.time``."""
        session = self.session
        if session is None:
            self._discard(sock)
            return
        now = clock()
        # Each datagram is read straight into the session's SRTP buffer (no bytes object, no copy).
        if self._latched or sock is not self.rtp_sock:
            # The source address no longer matters: recv_into() skips building an address tuple. One
            # datagram per wake-up: a call's socket rarely holds two, and reading until it is empty would
            # cost a second recv() and a BlockingIOError every time. The reader is level-triggered, so
            # anything left over fires the callback again on the next loop iteration.
            try:
                size = sock.recv_into(session.receive_buffer)
            except OSError:  # e.g. ICMP port unreachable surfaced on the socket; the next packet may succeed
                return
            session.receive_buffered(size, now)
        else:
            counters = session.counters
            for _ in range(_DRAIN_BATCH):
                try:
                    size, source = sock.recvfrom_into(session.receive_buffer)
                except OSError:
                    break
                before = counters.packets_received
                session.receive_buffered(size, now)
                if not self._latched and counters.packets_received > before:
                    # Symmetric RTP (RFC 4961): answer to where authenticated media really comes from (NAT).
                    self._latched = True
                    self._remote_rtp = (source[0], source[1])
        # receive_datagram() never queues a datagram, so there is nothing to flush here.
        if self._events:
            self._dispatch_events()

    @staticmethod
    def _discard(sock: socket.socket) -> None:
        """Media before negotiation finished (or after a failed one) has nowhere to go."""
        for _ in range(_DRAIN_BATCH):
            try:
                sock.recv(_MAX_DATAGRAM)
            except OSError:  # BlockingIOError included: nothing left
                return

    def flush(self, now: float) -> None:
        session = self.session
        if session is None:
            return
        for data, rtcp in session.datagrams_to_send(now):
            try:
                if rtcp:
                    self.rtcp_sock.sendto(data, self._remote_rtcp)
                else:
                    self.rtp_sock.sendto(data, self._remote_rtp)
            except OSError:
                self.send_errors += 1  # a full socket buffer or unreachable peer drops one packet only

    def _dispatch_events(self) -> None:
        session = self.session
        if session is None:
            return
        app = self._app
        codec = self._codec
        wants_audio = session.deliver_media  # set from the direction and the app by update()
        while (event := session.next_event()) is not None:
            if not isinstance(event, MediaReceived):
                self._timer_due = -math.inf  # inactivity or resume moves the session's timer
                self.on_event(event)
            elif (
                wants_audio
                and app is not None
                and codec is not None
                and event.packet.payload_type == codec.payload_type
            ):
                app.on_audio(codec.decode(event.packet.payload))

    def stats(self) -> MediaStats:
        session = self.session
        if session is None:
            return NO_MEDIA
        counters = session.counters
        receiver = session.receiver
        lost = max(receiver.cumulative_lost, 0) if receiver else 0
        expected = receiver.expected if receiver else 0
        loss = lost / expected if expected > 0 else 0.0
        clock_rate = self._codec.clock_rate if self._codec else 8000
        jitter_s = receiver.jitter / clock_rate if receiver else 0.0
        rtt = session.round_trip_time
        return MediaStats(
            packets_sent=counters.packets_sent,
            packets_received=counters.packets_received,
            packets_lost=lost,
            loss_fraction=loss,
            jitter_ms=jitter_s * 1000,
            rtt_ms=None if rtt is None else rtt * 1000,
            srtp_failures=counters.srtp_auth_failures + counters.srtp_replays + counters.srtp_malformed,
            mos=estimate_mos(rtt_s=rtt, jitter_s=jitter_s, loss_fraction=loss),
            srtcp_failures=counters.srtcp_failures,
            send_errors=self.send_errors,
        )

    def close(self, now: float) -> None:
        if self.session is not None:
            self.session.bye(now, "call ended")
            self.flush(now)
        self.rtp_sock.close()
        self.rtcp_sock.close()


class MediaEngine:
    """Owns the shared media clock and every leg's sockets."""

    def __init__(self, *, ptime: float = 0.020) -> None:
        self._ptime = ptime
        self._legs: set[MediaLeg] = set()
        self._stopped = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.on_tick: Callable[[float, bool], None] | None = None
        """Diagnostics hook: ``(deadline, False)`` just before a clock tick runs the legs and ``(deadline,
        True)`` just after, so an observer can time how late ticks start and how long they take."""

    def add(self, leg: MediaLeg) -> None:
        """Start reading the leg's sockets and ticking it on the shared clock."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._legs.add(leg)
        loop.add_reader(leg.rtp_sock.fileno(), leg.on_readable, leg.rtp_sock, loop.time)
        loop.add_reader(leg.rtcp_sock.fileno(), leg.on_readable, leg.rtcp_sock, loop.time)

    def remove(self, leg: MediaLeg) -> None:
        """Stop the leg, send its RTCP BYE and close its sockets."""
        if leg not in self._legs:
            return
        self._legs.discard(leg)
        loop = self._loop or asyncio.get_running_loop()
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(leg.rtp_sock.fileno())
            loop.remove_reader(leg.rtcp_sock.fileno())
        leg.close(loop.time())

    def stop(self) -> None:
        self._stopped = True

    async def run(self, start: float | None = None) -> None:
        """The shared clock: tick n of every leg at ``start + n * ptime`` (never accumulated sleeps).

        *start* is a ``loop.time()`` instant, now by default."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        clock = MediaClock(self._ptime, start=loop.time() if start is None else start)
        skipped_seen = 0
        while not self._stopped:
            now = loop.time()
            frames = clock.due(now)
            if frames:
                skipped = clock.skipped_ticks - skipped_seen
                skipped_seen = clock.skipped_ticks
                observer = self.on_tick
                if observer is not None:
                    observer(clock.deadline(clock.ticks - 1), False)
                for leg in tuple(self._legs):
                    leg.tick(now, frames, skipped)
                if observer is not None:
                    observer(clock.deadline(clock.ticks - 1), True)
            # Always yield, even when late: receive callbacks must run or every packet looks lost.
            await asyncio.sleep(max(0.0, clock.next_deadline() - loop.time()))
