"""RTP packets (RFC 3550 §5.1, §5.3.1) and the RTP/RTCP demultiplexer (RFC 5761 §4).

``RtpPacket.parse(data)`` and ``bytes(packet)`` are inverses for every valid packet: padding is kept as a
length so a padded packet serialises back to the same bytes (the padding octets are written as zeros, which
is what every sender we know of uses; RFC 3550 leaves their value unspecified).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

__all__ = [
    "RTP_HEADER_LENGTH",
    "RTP_VERSION",
    "RtpExtension",
    "RtpPacket",
    "RtpParseError",
    "is_rtcp",
]

RTP_VERSION: Final = 2
RTP_HEADER_LENGTH: Final = 12
_MAX_CSRC: Final = 15

_HEADER: Final = struct.Struct("!BBHII")
_EXTENSION_HEADER: Final = struct.Struct("!HH")


class RtpParseError(ValueError):
    """The peer sent bytes that are not a well-formed RTP or RTCP packet; drop the datagram."""


def is_rtcp(data: bytes) -> bool:
    """True if ``data`` (plain or SRTP/SRTCP) is RTCP rather than RTP.

    RFC 5761 §4: RTCP packet types 192-223 occupy the second octet where RTP carries M+PT; with payload
    types kept out of 64-95 the two never collide.
    """
    return len(data) >= 2 and 192 <= data[1] <= 223


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """Header extension (RFC 3550 §5.3.1): 16-bit profile id and data (a multiple of 4 bytes)."""

    profile: int
    data: bytes


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet; the payload is opaque here (a codec frame or an RFC 4733 event)."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding_length: int = 0
    """Octets of padding after the payload, including the count octet itself (0 = no P bit)."""

    def __repr__(self) -> str:
        return (
            f"RtpPacket(pt={self.payload_type}, seq={self.sequence_number}, ts={self.timestamp}, "
            f"ssrc={self.ssrc:#010x}, marker={self.marker}, payload={len(self.payload)} bytes)"
        )

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Decode one RTP packet; raise :class:`RtpParseError` if it is truncated or malformed."""
        if len(data) < RTP_HEADER_LENGTH:
            raise RtpParseError(f"RTP packet is {len(data)} bytes, shorter than the 12-byte header")
        first, second, seq, ts, ssrc = _HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpParseError(f"RTP version is {first >> 6}, expected 2")
        end = len(data)
        padding_length = 0
        if first & 0x20:  # RFC 3550 §5.1: P bit, last octet counts the padding
            padding_length = data[-1]
            if padding_length == 0 or padding_length > end - RTP_HEADER_LENGTH:
                raise RtpParseError(f"RTP padding length {padding_length} is invalid")
            end -= padding_length
        pos = RTP_HEADER_LENGTH
        csrc_count = first & 0x0F
        if pos + 4 * csrc_count > end:
            raise RtpParseError("RTP packet has truncated CSRC list")
        csrc = struct.unpack_from(f"!{csrc_count}I", data, pos) if csrc_count else ()
        pos += 4 * csrc_count
        extension = None
        if first & 0x10:  # X bit, RFC 3550 §5.3.1
            if pos + 4 > end:
                raise RtpParseError("RTP packet has truncated extension header")
            profile, words = _EXTENSION_HEADER.unpack_from(data, pos)
            pos += 4
            if pos + 4 * words > end:
                raise RtpParseError("RTP packet has truncated extension data")
            extension = RtpExtension(profile, bytes(data[pos : pos + 4 * words]))
            pos += 4 * words
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            marker=bool(second & 0x80),
            csrc=tuple(csrc),
            extension=extension,
            padding_length=padding_length,
        )

    def __bytes__(self) -> bytes:
        if len(self.csrc) > _MAX_CSRC:
            raise ValueError(f"RTP packet can carry at most 15 CSRCs, not {len(self.csrc)}")
        if not 0 <= self.padding_length <= 255:
            raise ValueError(f"RTP padding length {self.padding_length} does not fit one octet")
        first = RTP_VERSION << 6 | len(self.csrc)
        if self.padding_length:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        parts = [
            _HEADER.pack(
                first,
                (0x80 if self.marker else 0) | self.payload_type,
                self.sequence_number,
                self.timestamp,
                self.ssrc,
            )
        ]
        if self.csrc:
            parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if self.extension is not None:
            ext = self.extension
            if len(ext.data) % 4:
                raise ValueError("RTP header extension data must be a multiple of 4 bytes")
            parts.append(_EXTENSION_HEADER.pack(ext.profile, len(ext.data) // 4))
            parts.append(ext.data)
        parts.append(self.payload)
        if self.padding_length:
            parts.append(bytes(self.padding_length - 1) + bytes((self.padding_length,)))
        return b"".join(parts)
