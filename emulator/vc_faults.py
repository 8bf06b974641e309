"""Faults the Voice Connector stand-in can inject, per call: "the next N calls behave like this".

One :class:`CallFault` describes everything unusual about one call; several behaviours may combine (answer
late *and* drop after a while). Faults queue in injection order and each incoming INVITE that passes the
request checks takes the next one. Thread-safe: tests and the standalone process inject from other threads.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, fields

__all__ = ["CallFault", "VoiceConnectorFaults"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFault:
    """How one call misbehaves; every field left at its default means "as normal"."""

    reject: int | None = None
    """Refuse the INVITE with this 3xx-6xx status instead of answering."""
    answer_delay_s: float = 0.0
    """Send 180 at once but the 200 only after this many seconds."""
    drop_after_s: float | None = None
    """Send BYE this long after the call is confirmed."""
    hold_resume_after_s: float | None = None
    """This long after confirmation re-INVITE with sendonly (hold), and as long again later with sendrecv."""
    update_refresh_after_s: float | None = None
    """This long after confirmation send an UPDATE without a body (RFC 4028 session refresh)."""
    answer_without_crypto: bool = False
    """Answer with RTP/AVP and no a=crypto: a client must refuse it, never fall back to plain RTP."""
    stop_media_after_s: float | None = None
    """Stop sending RTP this long after confirmation (RTCP continues): the caller sees silence on the wire."""

    def __post_init__(self) -> None:
        if self.reject is not None and not 300 <= self.reject < 700:
            raise ValueError(f"reject must be a 3xx-6xx status, not {self.reject}")
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, float | int) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"{spec.name} must not be negative")


class VoiceConnectorFaults:
    """The next-call fault queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: deque[CallFault] = deque()

    def add(self, fault: CallFault, times: int = 1) -> None:
        """Apply ``fault`` to each of the next ``times`` calls (after those already queued)."""
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError("times must be a positive integer")
        with self._lock:
            self._pending.extend([fault] * times)

    def reject(self, status: int, times: int = 1) -> None:
        self.add(CallFault(reject=status), times)

    def answer_delay(self, seconds: float, times: int = 1) -> None:
        self.add(CallFault(answer_delay_s=seconds), times)

    def drop_after(self, seconds: float, times: int = 1) -> None:
        self.add(CallFault(drop_after_s=seconds), times)

    def hold_resume(self, after_s: float, times: int = 1) -> None:
        self.add(CallFault(hold_resume_after_s=after_s), times)

    def update_refresh(self, after_s: float, times: int = 1) -> None:
        self.add(CallFault(update_refresh_after_s=after_s), times)

    def answer_without_crypto(self, times: int = 1) -> None:
        self.add(CallFault(answer_without_crypto=True), times)

    def stop_media(self, after_s: float, times: int = 1) -> None:
        self.add(CallFault(stop_media_after_s=after_s), times)

    def take(self) -> CallFault:
        """The fault for the call arriving now (a normal one when nothing is queued)."""
        with self._lock:
            return self._pending.popleft() if self._pending else CallFault()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
