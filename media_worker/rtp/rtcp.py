"""RTCP packets (RFC 3550 §6.4-§6.6) and compound packets (§6.1).

``parse_rtcp(data)`` splits a compound packet into typed packets; ``serialize_rtcp(packets)`` joins them.
Packet types we do not interpret (APP, feedback, XR) survive as :class:`RtcpUnknownPacket` so a compound
packet still parses. Errors are :class:`~media_worker.rtp.packet.RtpParseError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from .packet import RTP_VERSION, RtpParseError

__all__ = [
    "RTCP_BYE",
    "RTCP_RR",
    "RTCP_SDES",
    "RTCP_SR",
    "SDES_CNAME",
    "RtcpByePacket",
    "RtcpPacket",
    "RtcpReportBlock",
    "RtcpRrPacket",
    "RtcpSdesChunk",
    "RtcpSdesPacket",
    "RtcpSrPacket",
    "RtcpUnknownPacket",
    "parse_rtcp",
    "serialize_rtcp",
]

RTCP_SR: Final = 200
RTCP_RR: Final = 201
RTCP_SDES: Final = 202
RTCP_BYE: Final = 203
SDES_CNAME: Final = 1

_COMMON_HEADER: Final = struct.Struct("!BBH")
_SENDER_INFO: Final = struct.Struct("!IQIII")  # SSRC, NTP, RTP ts, packet count, octet count
_REPORT_BLOCK: Final = struct.Struct("!IBBHIIII")  # SSRC, fraction, lost(24), ext seq, jitter, LSR, DLSR
_MAX_COUNT: Final = 31


@dataclass(frozen=True, slots=True)
class RtcpReportBlock:
    """Reception report about one source (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int
    """Fraction lost since the previous report, fixed point /256."""
    packets_lost: int
    """Cumulative number lost, signed 24 bit (duplicates can make it negative)."""
    highest_sequence: int
    """Extended highest sequence number received (cycles << 16 | max_seq)."""
    jitter: int
    """Interarrival jitter in RTP timestamp units."""
    lsr: int
    """Middle 32 bits of the NTP timestamp of the last SR received from this source, 0 if none."""
    dlsr: int
    """Delay since that SR, in units of 1/65536 s."""

    def __bytes__(self) -> bytes:
        lost = self.packets_lost & 0xFFFFFF
        return _REPORT_BLOCK.pack(
            self.ssrc, self.fraction_lost, lost >> 16, lost & 0xFFFF,
            self.highest_sequence, self.jitter, self.lsr, self.dlsr,
        )  # fmt: skip

    @classmethod
    def parse(cls, data: bytes, offset: int) -> RtcpReportBlock:
        ssrc, fraction, lost_hi, lost_lo, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        lost = lost_hi << 16 | lost_lo
        if lost & 0x800000:  # sign-extend the 24-bit two's complement count
            lost -= 1 << 24
        return cls(ssrc, fraction, lost, highest, jitter, lsr, dlsr)


@dataclass(frozen=True, slots=True)
class RtcpSrPacket:
    """Sender report (RFC 3550 §6.4.1)."""

    ssrc: int
    ntp_timestamp: int
    """64-bit NTP timestamp (seconds << 32 | fraction)."""
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[RtcpReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        body = _SENDER_INFO.pack(
            self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count, self.octet_count
        ) + b"".join(bytes(r) for r in self.reports)
        return _pack(RTCP_SR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class RtcpRrPacket:
    """Receiver report (RFC 3550 §6.4.2)."""

    ssrc: int
    reports: tuple[RtcpReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(bytes(r) for r in self.reports)
        return _pack(RTCP_RR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class RtcpSdesChunk:
    """One SDES chunk: a source and its (item type, value) pairs (RFC 3550 §6.5)."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class RtcpSdesPacket:
    """Source description (RFC 3550 §6.5); we send CNAME only."""

    chunks: tuple[RtcpSdesChunk, ...]

    def __bytes__(self) -> bytes:
        body = bytearray()
        for chunk in self.chunks:
            body += struct.pack("!I", chunk.ssrc)
            for item_type, value in chunk.items:
                if not 1 <= item_type <= 255 or len(value) > 255:
                    raise ValueError("SDES items need a type 1-255 and at most 255 bytes of text")
                body += bytes((item_type, len(value))) + value
            body += bytes(4 - len(body) % 4)  # null item, then pad the chunk to 32 bits (§6.5)
        return _pack(RTCP_SDES, len(self.chunks), bytes(body))


@dataclass(frozen=True, slots=True)
class RtcpByePacket:
    """Goodbye (RFC 3550 §6.6): these sources are leaving."""

    sources: tuple[int, ...]
    reason: bytes = b""

    def __bytes__(self) -> bytes:
        body = struct.pack(f"!{len(self.sources)}I", *self.sources)
        if self.reason:
            if len(self.reason) > 255:
                raise ValueError("BYE reason is limited to 255 bytes")
            body += bytes((len(self.reason),)) + self.reason
            body += bytes(-len(body) % 4)
        return _pack(RTCP_BYE, len(self.sources), body)


@dataclass(frozen=True, slots=True)
class RtcpUnknownPacket:
    """An RTCP packet type we carry but do not interpret (APP, RTPFB, PSFB, XR, ...)."""

    packet_type: int
    count: int
    body: bytes

    def __bytes__(self) -> bytes:
        return _pack(self.packet_type, self.count, self.body)


RtcpPacket = RtcpSrPacket | RtcpRrPacket | RtcpSdesPacket | RtcpByePacket | RtcpUnknownPacket


def _pack(packet_type: int, count: int, body: bytes) -> bytes:
    if count > _MAX_COUNT:
        raise ValueError(f"RTCP packet can count at most 31 items, not {count}")
    if len(body) % 4:
        raise ValueError("RTCP packet body must be a multiple of 4 bytes")
    return _COMMON_HEADER.pack(RTP_VERSION << 6 | count, packet_type, len(body) // 4) + body


def serialize_rtcp(packets: Iterable[RtcpPacket]) -> bytes:
    """Concatenate packets into one compound RTCP packet (RFC 3550 §6.1)."""
    return b"".join(bytes(p) for p in packets)


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Split a compound RTCP packet and decode each part; raise :class:`RtpParseError` on bad input.

    Padding is allowed only on the last packet of the compound (RFC 3550 §6.4.1, §A.2). A first packet
    other than SR/RR is tolerated (RFC 5506 reduced-size RTCP).
    """
    packets: list[RtcpPacket] = []
    pos = 0
    if len(data) < 4:
        raise RtpParseError(f"RTCP packet is {len(data)} bytes, shorter than its 4-byte header")
    while pos < len(data):
        if pos + 4 > len(data):
            raise RtpParseError("RTCP compound packet has a truncated header")
        first, packet_type, words = _COMMON_HEADER.unpack_from(data, pos)
        if first >> 6 != RTP_VERSION:
            raise RtpParseError(f"RTCP version is {first >> 6}, expected 2")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise RtpParseError("RTCP packet length exceeds the datagram")
        body_end = end
        if first & 0x20:
            if end != len(data):
                raise RtpParseError("RTCP padding is only allowed on the last packet of a compound")
            pad = data[end - 1]
            if pad == 0 or pad > 4 * words:
                raise RtpParseError(f"RTCP padding length {pad} is invalid")
            body_end -= pad
        packets.append(_parse_one(packet_type, first & 0x1F, bytes(data[pos + 4 : body_end])))
        pos = end
    return packets


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == RTCP_SR:
        if len(body) < _SENDER_INFO.size + count * _REPORT_BLOCK.size:
            raise RtpParseError("RTCP SR is truncated")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        return RtcpSrPacket(
            ssrc, ntp, rtp_ts, packets, octets, _report_blocks(body, _SENDER_INFO.size, count)
        )
    if packet_type == RTCP_RR:
        if len(body) < 4 + count * _REPORT_BLOCK.size:
            raise RtpParseError("RTCP RR is truncated")
        return RtcpRrPacket(struct.unpack_from("!I", body)[0], _report_blocks(body, 4, count))
    if packet_type == RTCP_SDES:
        return RtcpSdesPacket(_sdes_chunks(body, count))
    if packet_type == RTCP_BYE:
        return _parse_bye(body, count)
    if not 192 <= packet_type <= 223:
        raise RtpParseError(f"RTCP packet type {packet_type} is outside 192-223")
    return RtcpUnknownPacket(packet_type, count, body)


def _report_blocks(body: bytes, offset: int, count: int) -> tuple[RtcpReportBlock, ...]:
    return tuple(RtcpReportBlock.parse(body, offset + i * _REPORT_BLOCK.size) for i in range(count))


def _sdes_chunks(body: bytes, count: int) -> tuple[RtcpSdesChunk, ...]:
    chunks = []
    pos = 0
    for _ in range(count):
        if pos + 4 > len(body):
            raise RtpParseError("RTCP SDES chunk is truncated")
        ssrc = struct.unpack_from("!I", body, pos)[0]
        pos += 4
        items = []
        while True:
            if pos >= len(body):
                raise RtpParseError("RTCP SDES chunk is missing its terminating null item")
            item_type = body[pos]
            if item_type == 0:
                pos = (pos + 4) & ~3  # skip the null item and pad to the next 32-bit boundary
                break
            if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                raise RtpParseError("RTCP SDES item is truncated")
            length = body[pos + 1]
            items.append((item_type, bytes(body[pos + 2 : pos + 2 + length])))
            pos += 2 + length
        chunks.append(RtcpSdesChunk(ssrc, tuple(items)))
    return tuple(chunks)


def _parse_bye(body: bytes, count: int) -> RtcpByePacket:
    if len(body) < 4 * count:
        raise RtpParseError("RTCP BYE is truncated")
    sources = struct.unpack_from(f"!{count}I", body)
    reason = b""
    pos = 4 * count
    if pos < len(body):
        length = body[pos]
        if pos + 1 + length > len(body):
            raise RtpParseError("RTCP BYE reason is truncated")
        reason = bytes(body[pos + 1 : pos + 1 + length])
    return RtcpByePacket(tuple(sources), reason)
