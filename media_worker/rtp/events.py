"""Events a :class:`~media_worker.rtp.session.MediaSession` reports through ``next_event()``.

Plain frozen, slotted, past-tense dataclasses with keyword-only fields. Don't subclass these.
"""

from __future__ import annotations

from dataclasses import dataclass

from .packet import RtpPacket

__all__ = [
    "DtmfReceived",
    "MediaEvent",
    "MediaInactive",
    "MediaReceived",
    "MediaResumed",
    "RemoteByeReceived",
    "RtcpReportReceived",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaReceived:
    """An authenticated RTP media packet arrived (telephone-events are reported as DtmfReceived)."""

    packet: RtpPacket
    arrival: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived:
    """The peer finished sending a DTMF digit (RFC 4733); reported once per event."""

    digit: str
    duration: int
    """Length in RTP timestamp units."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaInactive:
    """No authenticated RTP arrived for the inactivity timeout: the far end went silent or away."""

    since: float
    """When the last authenticated packet arrived (or the session started)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaResumed:
    """Authenticated RTP arrived again after :class:`MediaInactive`."""

    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpReportReceived:
    """The peer reported on our stream in an SR or RR (RFC 3550 §6.4)."""

    fraction_lost: int
    """Fraction of our packets lost in the last interval, /256."""
    packets_lost: int
    jitter: int
    """Interarrival jitter the peer measured, in RTP timestamp units."""
    round_trip_time: float | None
    """Seconds, from LSR/DLSR (RFC 3550 §6.4.1); None until the peer has seen one of our SRs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteByeReceived:
    """The peer's RTCP BYE named its media source (RFC 3550 §6.6)."""

    ssrc: int
    reason: str


MediaEvent = (
    MediaReceived | DtmfReceived | MediaInactive | MediaResumed | RtcpReportReceived | RemoteByeReceived
)
