"""DTMF as RTP telephone-events (RFC 4733 §2.3, §2.5, §3.2).

A digit becomes one event: every packet carries the timestamp of the event's start; the first has the
marker bit; each following packet reports the duration so far; the final duration is sent three times with
the E bit (§2.5.1.4) so one lost packet does not lose the end.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from .packet import RtpParseError

__all__ = ["DTMF_DIGITS", "DtmfDetector", "TelephoneEvent", "dtmf_events"]

DTMF_DIGITS: Final = "0123456789*#ABCD"
"""Event codes 0-15 in order (RFC 4733 §3.2)."""
END_RETRANSMISSIONS: Final = 3
_PAYLOAD: Final = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-byte telephone-event payload (RFC 4733 §2.3)."""

    event: int
    end: bool
    volume: int
    """Power level as -dBm0 (0-63)."""
    duration: int
    """Duration so far in timestamp units."""

    def __bytes__(self) -> bytes:
        return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """Decode a telephone-event payload; raise :class:`RtpParseError` if it is too short."""
        if len(payload) < _PAYLOAD.size:
            raise RtpParseError(f"telephone-event payload is {len(payload)} bytes, need 4")
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    @property
    def digit(self) -> str | None:
        """The DTMF digit for events 0-15, None for other events (tones, flash)."""
        return DTMF_DIGITS[self.event] if self.event < len(DTMF_DIGITS) else None


def dtmf_events(digit: str, *, duration: int, interval: int = 160, volume: int = 10) -> list[TelephoneEvent]:
    """The packets of one digit, in sending order; send one per *interval* (timestamp units).

    *duration* is the tone length in timestamp units (800 = 100 ms at 8 kHz); all packets share the
    event's start timestamp and the first carries the marker bit (RFC 4733 §2.5.1.1).
    """
    if len(digit) != 1 or digit.upper() not in DTMF_DIGITS:
        raise ValueError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D)")
    if not 0 < duration <= 0xFFFF:
        raise ValueError(f"DTMF duration must be 1-65535 timestamp units, not {duration}")
    if interval <= 0 or not 0 <= volume <= 63:
        raise ValueError("DTMF interval must be positive and volume within 0-63")
    code = DTMF_DIGITS.index(digit.upper())
    events = [
        TelephoneEvent(event=code, end=False, volume=volume, duration=elapsed)
        for elapsed in range(interval, duration, interval)
    ]
    final = TelephoneEvent(event=code, end=True, volume=volume, duration=duration)
    return events + [final] * END_RETRANSMISSIONS


class DtmfDetector:
    """Turns received telephone-event packets into digits, once per event despite the retransmitted end."""

    __slots__ = ("_last_ended",)

    def __init__(self) -> None:
        self._last_ended: int | None = None

    def feed(self, timestamp: int, event: TelephoneEvent) -> TelephoneEvent | None:
        """Return the event when this packet is the first end packet of a new event, else None."""
        if not event.end or timestamp == self._last_ended:
            return None
        self._last_ended = timestamp
        return event
