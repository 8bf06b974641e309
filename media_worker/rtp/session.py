"""MediaSession: the sans-I/O RTP/RTCP endpoint of one call leg (RFC 3550), with SRTP (RFC 3711).

Driven like aioquic's connection: ``receive_datagram(data, now)`` for every UDP datagram (RTP or RTCP), or
``receive_buffered(size, now)`` after reading it into ``receive_buffer``; ``send_frame(payload)`` /
``send_dtmf(digit)`` per media-clock tick, ``datagrams_to_send(now)`` to flush (or
``protect_frame(payload, now)``, which hands the tick's one datagram straight back),
``get_timer()`` / ``handle_timer(now)`` for RTCP reports and the inactivity check, ``next_event()`` for what
happened. ``now`` is monotonic seconds; nothing here reads a clock, opens a socket or draws randomness except
through the injected ``urandom``.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from .dtmf import DtmfDetector, TelephoneEvent, dtmf_events
from .events import (
    DtmfReceived,
    MediaEvent,
    MediaInactive,
    MediaReceived,
    MediaResumed,
    RemoteByeReceived,
    RtcpReportReceived,
)
from .packet import RTP_HEADER_LENGTH, RtpPacket, RtpParseError
from .rtcp import (
    SDES_CNAME,
    RtcpByePacket,
    RtcpPacket,
    RtcpReportBlock,
    RtcpRrPacket,
    RtcpSdesChunk,
    RtcpSdesPacket,
    RtcpSrPacket,
    parse_rtcp,
    serialize_rtcp,
)
from .srtp import SrtpContext, SrtpError, SrtpFailure
from .stats import NTP_UNIX_EPOCH_OFFSET, ReceiverStatistics, ntp_timestamp, round_trip_time

__all__ = ["MediaCounters", "MediaSession", "MediaSessionClosedError"]

_RTP_HEADER: Final = struct.Struct("!BBHII")
_pack_header_into: Final = _RTP_HEADER.pack_into
_unpack_fixed_header: Final = struct.Struct("!xBHII").unpack_from  # M|PT, sequence, timestamp, SSRC
_PLAIN_RTP_FIRST_OCTET: Final = 0x80  # RFC 3550 §5.1: V=2, P=0, X=0, CC=0
RTCP_INTERVAL: Final = 5.0  # RFC 3550 §6.2 recommended minimum


class MediaSessionClosedError(Exception):
    """The caller tried to send after ``bye()``: a bug in the caller, not the peer."""


@dataclass(slots=True)
class MediaCounters:
    """Running counts for metrics and the call record."""

    packets_sent: int = 0
    octets_sent: int = 0
    """Payload octets, as the SR reports them (RFC 3550 §6.4.1)."""
    packets_received: int = 0
    srtp_auth_failures: int = 0
    srtp_replays: int = 0
    srtp_malformed: int = 0
    srtcp_failures: int = 0
    """SRTCP datagrams refused. Kept apart from the RTP counts: some peers send a plain RTCP packet or a
    short SRTCP tag, which costs nothing but reports, while a refused RTP packet is lost audio."""
    malformed: int = 0
    """Authenticated packets that still did not parse as RTP/RTCP."""


class MediaSession:
    """RTP/RTCP over SRTP for one call leg. Outgoing datagrams are ``(data, is_rtcp)`` pairs so the caller
    can route RTCP to the RTCP port when it is not multiplexed (RFC 5761)."""

    # Slots keep a session's per-packet state in one compact object: at hundreds of calls per core the
    # cache misses of a dict-backed instance cost more than the bytecode that reads it.
    __slots__ = (
        "_clock_rate",
        "_closed",
        "_dtmf_detector",
        "_dtmf_queue",
        "_dtmf_timestamp",
        "_events",
        "_inactive",
        "_inactivity_timeout",
        "_last_received",
        "_next_rtcp",
        "_ntp_offset",
        "_outgoing",
        "_payload_type",
        "_protect_in_place",
        "_protect_rtp",
        "_report_anchor",
        "_rtcp_interval",
        "_samples_per_frame",
        "_sequence",
        "_srtp",
        "_te_payload_type",
        "_timestamp",
        "_tx_buffer",
        "_tx_view",
        "_unprotect_in_place",
        "_urandom",
        "cname",
        "counters",
        "deliver_media",
        "pending_events",
        "receive_buffer",
        "receiver",
        "round_trip_time",
        "ssrc",
    )

    def __init__(
        self,
        *,
        srtp: SrtpContext,
        payload_type: int,
        now: float,
        clock_rate: int = 8000,
        samples_per_frame: int = 160,
        telephone_event_payload_type: int | None = None,
        inactivity_timeout: float = 10.0,
        rtcp_interval: float = RTCP_INTERVAL,
        wallclock_offset: float = 0.0,
        cname: str | None = None,
        urandom: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """*wallclock_offset* is added to ``now`` to get Unix time for SR NTP timestamps; RTT is correct
        without it because both ends of the LSR/DLSR arithmetic use our own clock."""
        self._srtp = srtp
        self._payload_type = payload_type
        self._clock_rate = clock_rate
        self._samples_per_frame = samples_per_frame
        self._te_payload_type = telephone_event_payload_type
        self._inactivity_timeout = inactivity_timeout
        self._rtcp_interval = rtcp_interval
        self._ntp_offset = wallclock_offset + NTP_UNIX_EPOCH_OFFSET
        self._urandom = urandom
        # RFC 3550 §5.1, §8: random SSRC and random initial sequence number and timestamp.
        self.ssrc: int = int.from_bytes(urandom(4), "big")
        self._sequence = int.from_bytes(urandom(2), "big")
        self._timestamp = int.from_bytes(urandom(4), "big")
        self.cname = cname if cname is not None else urandom(8).hex()  # RFC 7022 random CNAME
        self.counters = MediaCounters()
        self.receiver: ReceiverStatistics | None = None
        """Statistics about the peer's stream (reset when its SSRC changes)."""
        self.round_trip_time: float | None = None
        self._dtmf_detector = DtmfDetector()
        self._dtmf_queue: deque[tuple[int, TelephoneEvent, bool]] = deque()  # (payload type, event, first)
        self._dtmf_timestamp = 0
        self._report_anchor: tuple[float, int] | None = None
        """``(now, RTP timestamp)`` of the first frame sent since the last report, None if none was: the
        sender report's RTP timestamp is extrapolated from it (RFC 3550 §6.4.1), since the media clock keeps
        the two in step between ticks."""
        self._last_received = now
        self._inactive = False
        self._closed = False
        self._next_rtcp = now + self._rtcp_delay()
        self._events: deque[MediaEvent] = deque()
        self.pending_events = self._events
        """The queue :meth:`next_event` pops, for a per-packet caller to test cheaply (truthy when not
        empty) before asking for events. Read-only for callers."""
        self._outgoing: list[tuple[bytes, bool]] = []
        self._protect_rtp = srtp.protect_rtp
        self._tx_buffer = srtp.tx_buffer
        self._tx_view = srtp.tx_view
        self._protect_in_place = srtp.protect_rtp_in_place
        self._unprotect_in_place = srtp.unprotect_rtp_in_place
        self.receive_buffer: bytearray = srtp.rx_buffer
        """Where the I/O shell may read a datagram before :meth:`receive_buffered` (``recv_into``)."""
        self.deliver_media = True
        """Report every media packet as :class:`MediaReceived`. A receiver that only needs the statistics
        (a listen-only call) sets this False and saves a packet object and an event per packet."""

    def __repr__(self) -> str:
        return f"MediaSession(ssrc={self.ssrc:#010x}, pt={self._payload_type}, srtp={self._srtp!r})"

    @property
    def srtp(self) -> SrtpContext:
        """The SRTP context this session protects and checks its packets with."""
        return self._srtp

    # ----- commands -------------------------------------------------------------------------------------

    def send_frame(self, payload: bytes, now: float, *, marker: bool = False) -> None:
        """Send one encoded frame on this media-clock tick, or the next DTMF packet if a digit is playing.

        The timestamp advances by one frame either way. Then flush ``datagrams_to_send()``.
        """
        if self._closed:
            raise MediaSessionClosedError("send_frame() after bye()")
        if self._dtmf_queue:
            self._send_next_dtmf(now)
        else:
            self._send_rtp(self._payload_type, marker, self._timestamp, payload, now)
        if self._report_anchor is None:
            self._report_anchor = (now, self._timestamp)  # the tick's media time, not a DTMF event's
        self._timestamp = (self._timestamp + self._samples_per_frame) & 0xFFFF_FFFF

    def protect_frame(self, payload: bytes, now: float) -> memoryview | None:
        """:meth:`send_frame` for a caller that sends at once: the protected RTP datagram, not queued. It is
        a view of the session's SRTP buffer, valid until the session protects another packet: send it at
        once (a socket takes it as it is) or copy it.

        None when the tick went to a playing DTMF digit instead: that packet is queued as
        :meth:`send_frame` queues it, so then flush ``datagrams_to_send()``.
        """
        if self._closed:
            raise MediaSessionClosedError("protect_frame() after bye()")
        if self._dtmf_queue:
            self.send_frame(payload, now)
            return None
        # This runs for every packet of every call: the packet is built in the SRTP buffer and protected
        # where it lies (RFC 3550 §5.1 header: V=2, no CSRC).
        timestamp = self._timestamp
        self._timestamp = (timestamp + self._samples_per_frame) & 0xFFFF_FFFF
        sequence = self._sequence
        buffer = self._tx_buffer
        _pack_header_into(buffer, 0, 0x80, self._payload_type, sequence, timestamp, self.ssrc)
        octets = len(payload)
        end = RTP_HEADER_LENGTH + octets
        buffer[RTP_HEADER_LENGTH:end] = payload
        datagram = self._tx_view[: self._protect_in_place(end)]
        self._sequence = (sequence + 1) & 0xFFFF
        counters = self.counters
        counters.packets_sent += 1
        counters.octets_sent += octets
        if self._report_anchor is None:
            self._report_anchor = (now, timestamp)
        return datagram

    def skip_frames(self, count: int) -> None:
        """Advance the timestamp over ``count`` frames not sent (media-clock ticks skipped while late)."""
        self._timestamp = (self._timestamp + count * self._samples_per_frame) & 0xFFFF_FFFF

    def send_dtmf(self, digit: str, *, duration: int = 800, volume: int = 10) -> None:
        """Queue one DTMF digit (RFC 4733); it replaces audio on the following ticks.

        Requires a negotiated telephone-event payload type. Then keep calling ``send_frame()`` per tick and
        flush ``datagrams_to_send()``.
        """
        if self._closed:
            raise MediaSessionClosedError("send_dtmf() after bye()")
        if self._te_payload_type is None:
            raise ValueError("no telephone-event payload type was negotiated")
        events = dtmf_events(digit, duration=duration, interval=self._samples_per_frame, volume=volume)
        self._dtmf_queue.extend((self._te_payload_type, event, i == 0) for i, event in enumerate(events))

    def bye(self, now: float, reason: str = "") -> None:
        """Leave: queue a last report plus RTCP BYE (RFC 3550 §6.6). Then flush ``datagrams_to_send()``."""
        if self._closed:
            return
        self._closed = True
        self._dtmf_queue.clear()
        bye = RtcpByePacket(sources=(self.ssrc,), reason=reason.encode()[:255])
        self._queue_rtcp([*self._report_packets(now), bye])

    # ----- I/O ------------------------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, now: float) -> None:
        """Process one received UDP datagram (SRTP or SRTCP). Bad packets are counted and dropped.

        Receiving never queues a datagram (reports go out on the timer), so no flush is needed after it.
        """
        size = len(data)
        buffer = self.receive_buffer
        if size > len(buffer):  # longer than any packet SRTP could authenticate here
            self.counters.srtp_malformed += 1
            return
        buffer[:size] = data
        self.receive_buffered(size, now)

    def receive_buffered(self, size: int, now: float) -> None:
        """:meth:`receive_datagram` for a datagram already read into :attr:`receive_buffer` (``size``
        octets): the I/O shell reads straight into the SRTP buffer, so nothing is copied on the way."""
        if self._closed:
            return
        buffer = self.receive_buffer
        if size < 2:  # not even an RTP or RTCP header
            self.counters.srtp_malformed += 1
            return
        # is_rtcp() inline, as this runs for every packet: RTCP packet types 192-223 (RFC 5761 §4) are the
        # second octets whose top three bits are 110.
        if buffer[1] >> 5 == 6:
            self._receive_rtcp(bytes(buffer[:size]), now)
            return
        try:
            size = self._unprotect_in_place(size)
        except SrtpError as exc:
            self._count_srtp_failure(exc.failure)
            return
        packet: RtpPacket | None = None
        # libsrtp only authenticates packets with a whole fixed header, so the buffer holds one.
        if buffer[0] == _PLAIN_RTP_FIRST_OCTET:
            # V=2 without padding, extension or CSRCs (what every G.711 sender sends): the fixed header is
            # all there is, so skip building a packet object unless someone wants the payload.
            second, sequence, timestamp, ssrc = _unpack_fixed_header(buffer)
            payload_type = second & 0x7F
            if self.deliver_media or payload_type == self._te_payload_type:
                packet = RtpPacket.parse(bytes(buffer[:size]))
        else:
            try:
                packet = RtpPacket.parse(bytes(buffer[:size]))
            except RtpParseError:
                self.counters.malformed += 1
                return
            payload_type, sequence, timestamp, ssrc = (
                packet.payload_type,
                packet.sequence_number,
                packet.timestamp,
                packet.ssrc,
            )
        self.counters.packets_received += 1
        self._last_received = now
        if self._inactive:
            self._inactive = False
            self._events.append(MediaResumed(at=now))
        receiver = self.receiver
        if receiver is None or receiver.ssrc != ssrc:
            receiver = self.receiver = ReceiverStatistics(ssrc, self._clock_rate)
        receiver.add(sequence, timestamp, now)
        if packet is None:
            return
        if payload_type == self._te_payload_type:
            self._receive_telephone_event(packet)
        elif self.deliver_media:
            self._events.append(MediaReceived(packet=packet, arrival=now))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, bool]]:
        """Protected datagrams queued since the last call, as ``(data, is_rtcp)``."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def get_timer(self) -> float | None:
        """When to call :meth:`handle_timer` next (None once closed)."""
        if self._closed:
            return None
        if self._inactive:
            return self._next_rtcp
        return min(self._next_rtcp, self._last_received + self._inactivity_timeout)

    def handle_timer(self, now: float) -> None:
        """Send a due RTCP report and check for media inactivity. Then flush ``datagrams_to_send()``."""
        if self._closed:
            return
        if not self._inactive and now >= self._last_received + self._inactivity_timeout:
            self._inactive = True
            self._events.append(MediaInactive(since=self._last_received))
        if now >= self._next_rtcp:
            self._queue_rtcp(self._report_packets(now))
            self._next_rtcp = now + self._rtcp_delay()

    def next_event(self) -> MediaEvent | None:
        """The next event, or None when there are none."""
        return self._events.popleft() if self._events else None

    # ----- internals ------------------------------------------------------------------------------------

    def _rtcp_delay(self) -> float:
        # RFC 3550 §6.3.1: randomise each interval over [0.5, 1.5] x the nominal so reports don't synchronise.
        fraction = int.from_bytes(self._urandom(2), "big") / 65536
        return self._rtcp_interval * (0.5 + fraction)

    def _send_rtp(self, payload_type: int, marker: bool, timestamp: int, payload: bytes, now: float) -> None:
        second = (0x80 if marker else 0) | payload_type
        self._outgoing.append((self._protected_rtp(second, timestamp, payload, now), False))

    def _protected_rtp(self, second_octet: int, timestamp: int, payload: bytes, now: float) -> bytes:
        """Build (RFC 3550 §5.1: V=2, no CSRC; *second_octet* is M|PT), protect and count one RTP packet."""
        sequence = self._sequence
        datagram = self._protect_rtp(
            _RTP_HEADER.pack(0x80, second_octet, sequence, timestamp, self.ssrc) + payload
        )
        self._sequence = (sequence + 1) & 0xFFFF
        counters = self.counters
        counters.packets_sent += 1
        counters.octets_sent += len(payload)
        return datagram

    def _send_next_dtmf(self, now: float) -> None:
        payload_type, event, first = self._dtmf_queue.popleft()
        if first:  # RFC 4733 §2.5.1.1: every packet of an event carries the timestamp of its first one
            self._dtmf_timestamp = self._timestamp
        self._send_rtp(payload_type, first, self._dtmf_timestamp, bytes(event), now)

    def _receive_telephone_event(self, packet: RtpPacket) -> None:
        try:
            event = TelephoneEvent.parse(packet.payload)
        except RtpParseError:
            self.counters.malformed += 1
            return
        ended = self._dtmf_detector.feed(packet.timestamp, event)
        if ended is not None and ended.digit is not None:
            self._events.append(DtmfReceived(digit=ended.digit, duration=ended.duration))

    def _count_srtp_failure(self, failure: SrtpFailure) -> None:
        if failure is SrtpFailure.AUTHENTICATION:
            self.counters.srtp_auth_failures += 1
        elif failure is SrtpFailure.REPLAY:
            self.counters.srtp_replays += 1
        else:
            self.counters.srtp_malformed += 1

    def _report_packets(self, now: float) -> list[RtcpPacket]:
        """SR if we sent media since the last report, else RR (RFC 3550 §6.4), then SDES CNAME (§6.1)."""
        blocks: tuple[RtcpReportBlock, ...] = ()
        if self.receiver is not None:
            blocks = (self.receiver.report_block(now),)
        report: RtcpPacket
        anchor = self._report_anchor
        if anchor is not None:
            sent_at, sent_timestamp = anchor
            elapsed = int((now - sent_at) * self._clock_rate)
            report = RtcpSrPacket(
                ssrc=self.ssrc,
                ntp_timestamp=ntp_timestamp(now + self._ntp_offset),
                rtp_timestamp=(sent_timestamp + elapsed) & 0xFFFF_FFFF,
                packet_count=self.counters.packets_sent & 0xFFFF_FFFF,
                octet_count=self.counters.octets_sent & 0xFFFF_FFFF,
                reports=blocks,
            )
        else:
            report = RtcpRrPacket(ssrc=self.ssrc, reports=blocks)
        self._report_anchor = None
        sdes = RtcpSdesPacket(chunks=(RtcpSdesChunk(self.ssrc, ((SDES_CNAME, self.cname.encode()[:255]),)),))
        return [report, sdes]

    def _queue_rtcp(self, packets: list[RtcpPacket]) -> None:
        self._outgoing.append((self._srtp.protect_rtcp(serialize_rtcp(packets)), True))

    def _receive_rtcp(self, data: bytes, now: float) -> None:
        try:
            packets = parse_rtcp(self._srtp.unprotect_rtcp(data))
        except SrtpError:
            self.counters.srtcp_failures += 1
            return
        except RtpParseError:
            self.counters.malformed += 1
            return
        for packet in packets:
            if isinstance(packet, RtcpSrPacket):
                if self.receiver is not None and packet.ssrc == self.receiver.ssrc:
                    self.receiver.on_sender_report(packet.ntp_timestamp, now)
                self._receive_report_blocks(packet.reports, now)
            elif isinstance(packet, RtcpRrPacket):
                self._receive_report_blocks(packet.reports, now)
            elif isinstance(packet, RtcpByePacket):
                for source in packet.sources:
                    reason = packet.reason.decode("utf-8", "replace")
                    self._events.append(RemoteByeReceived(ssrc=source, reason=reason))

    def _receive_report_blocks(self, blocks: tuple[RtcpReportBlock, ...], now: float) -> None:
        for block in blocks:
            if block.ssrc != self.ssrc:
                continue
            rtt = round_trip_time(ntp_timestamp(now + self._ntp_offset), block.lsr, block.dlsr)
            if rtt is not None:
                self.round_trip_time = rtt
            self._events.append(
                RtcpReportReceived(
                    fraction_lost=block.fraction_lost,
                    packets_lost=block.packets_lost,
                    jitter=block.jitter,
                    round_trip_time=rtt,
                )
            )
