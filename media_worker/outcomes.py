"""How a call ended, and everything worth recording about it once it has."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from .negotiation import FailureReason
from .net.media_engine import NO_MEDIA, MediaStats
from .sip import FailureCategory, TerminationReason

__all__ = [
    "FAILURE_REASONS",
    "NEGOTIATION_REASONS",
    "NO_MEDIA",
    "TERMINATION_REASONS",
    "CallResult",
    "EndReason",
]


class EndReason(StrEnum):
    """Why a call ended: the call record's end reason and the ``reason`` dimension of CallsFailed."""

    # Connected calls.
    REMOTE_BYE = "remote_bye"
    MEETING_ENDED = "meeting_ended"
    HUMANS_GONE = "humans_gone"
    ATTENDEE_DELETED = "attendee_deleted"
    MAX_DURATION = "max_duration"
    DRAINED = "drained"
    MEDIA_TIMEOUT = "media_timeout"
    SESSION_TIMER_EXPIRED = "session_timer_expired"
    CONNECTION_LOST = "connection_lost"
    LOCAL_HANGUP = "local_hangup"
    # Calls that never connected (or were torn down at once).
    BUSY = "busy"
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"
    RING_TIMEOUT = "ring_timeout"
    TLS_FAILURE = "tls_failure"
    CONNECT_FAILED = "connect_failed"
    NO_COMMON_CRYPTO = "no_common_crypto"
    NO_COMMON_CODEC = "no_common_codec"
    PROTOCOL_ERROR = "protocol_error"

    @property
    def is_redialable(self) -> bool:
        """The leg dropped under a call that may still be wanted: dialling again can help."""
        return self in _REDIALABLE


_REDIALABLE = frozenset(
    {
        EndReason.REMOTE_BYE,
        EndReason.CONNECTION_LOST,
        EndReason.MEDIA_TIMEOUT,
        EndReason.SESSION_TIMER_EXPIRED,
    }
)

# How the SIP and negotiation layers' reasons map to ours.
FAILURE_REASONS: Final[dict[FailureCategory, EndReason]] = {
    FailureCategory.BUSY: EndReason.BUSY,
    FailureCategory.REJECTED: EndReason.REJECTED,
    FailureCategory.UNAVAILABLE: EndReason.UNAVAILABLE,
    FailureCategory.TIMEOUT: EndReason.UNAVAILABLE,
    FailureCategory.NO_ANSWER: EndReason.RING_TIMEOUT,
    FailureCategory.AUTH_FAILED: EndReason.REJECTED,
    FailureCategory.REDIRECTED: EndReason.REJECTED,
    FailureCategory.SESSION_INTERVAL: EndReason.PROTOCOL_ERROR,
}
TERMINATION_REASONS: Final[dict[TerminationReason, EndReason]] = {
    TerminationReason.SESSION_TIMER_EXPIRED: EndReason.SESSION_TIMER_EXPIRED,
    TerminationReason.CONNECTION_LOST: EndReason.CONNECTION_LOST,
    TerminationReason.REQUEST_TIMEOUT: EndReason.CONNECTION_LOST,
    TerminationReason.DIALOG_GONE: EndReason.REMOTE_BYE,
    TerminationReason.ACK_TIMEOUT: EndReason.PROTOCOL_ERROR,
}
NEGOTIATION_REASONS: Final[dict[FailureReason, EndReason]] = {
    FailureReason.NO_COMMON_CRYPTO: EndReason.NO_COMMON_CRYPTO,
    FailureReason.NO_SRTP: EndReason.NO_COMMON_CRYPTO,
    FailureReason.NO_COMMON_CODEC: EndReason.NO_COMMON_CODEC,
}


@dataclass(frozen=True, slots=True)
class CallResult:
    """The outcome of one call. Nothing here holds a join token or a key."""

    end_reason: EndReason
    connected: bool
    sip_status: int | None
    """The final status of our INVITE (200 when answered), or None when no response came."""
    detail: str
    sip_call_id: str | None
    codec: str | None
    suite: str | None
    setup_latency_s: float | None
    duration_s: float
    """Connected time (answer to end), 0 when never connected."""
    media: MediaStats = NO_MEDIA
    timeline: dict[str, float] = field(default_factory=dict)
    """Loop-clock times: dial_started, first_provisional, answered, first_media, ended."""
    recording: bytes | None = field(default=None, repr=False)
    """PCM heard by the ``record`` media app."""

    def summary(self) -> dict[str, Any]:
        """A JSON-able, secret-free summary for the end-of-call log line and the CLI."""
        start = self.timeline.get("dial_started")
        return {
            "end_reason": self.end_reason.value,
            "connected": self.connected,
            "sip_status": self.sip_status,
            "detail": self.detail,
            "sip_call_id": self.sip_call_id,
            "codec": self.codec,
            "suite": self.suite,
            "setup_latency_ms": None if self.setup_latency_s is None else round(self.setup_latency_s * 1000),
            "duration_s": round(self.duration_s, 3),
            "media": self.media.as_dict(),
            "timeline_ms": {
                name: round((at - start) * 1000) for name, at in self.timeline.items() if start is not None
            },
            "recorded_bytes": None if self.recording is None else len(self.recording),
        }
