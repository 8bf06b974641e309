"""The Voice Connector stand-in's call book: one record per INVITE, and waiting on them without sleeps.

Records are written on the emulator's event loop only; tests read them after awaiting a condition with
:meth:`CallBook.wait_until` (or the thread-hosted variant's blocking equivalent).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from emulator.vc_faults import CallFault
from emulator.vc_media import ToneRecorderApp
from media_worker.net.media_engine import MediaLeg, MediaStats

__all__ = ["CallBook", "CallRecord", "CallState"]

_T = TypeVar("_T")


class CallState(enum.StrEnum):
    """Where one call is; the last four are final."""

    RINGING = "ringing"  # 100/180 sent, no final answer yet
    ANSWERED = "answered"  # 200 sent, waiting for the ACK
    CONNECTED = "connected"  # ACK received
    REJECTED = "rejected"  # a 3xx-6xx went back (a check, the SDP, or a fault)
    CANCELLED = "cancelled"  # the caller cancelled before our 200
    ENDED = "ended"  # the dialog ended (BYE either way, timeout, connection loss)
    FAILED = "failed"  # 200 sent but no dialog came of it (never acknowledged)


FINAL_STATES = frozenset({CallState.REJECTED, CallState.CANCELLED, CallState.ENDED, CallState.FAILED})


@dataclass(slots=True)
class CallRecord:
    """What the emulator saw and did on one call; never holds the join token or SRTP keys."""

    call_id: str
    request_uri: str
    """The Request-URI with its join token redacted."""
    caller: str | None
    fault: CallFault
    state: CallState = CallState.RINGING
    status: int | None = None
    """The final status we sent to the INVITE (200, or the rejection code)."""
    reason: str | None = None
    failed_check: str | None = None
    """Which request check refused the call (``transport``, ``join-token``...), if one did."""
    meeting_id: str | None = None
    attendee_id: str | None = None
    codec: str | None = None
    suite: str | None = None
    direction: str | None = None
    ended_by: str | None = None
    """``caller`` or ``emulator`` once the dialog has ended."""
    end_reason: str | None = None
    history: list[str] = field(default_factory=list)
    """Notable happenings in order (``hold``, ``resume:answered``, ``update-refresh:200``, ``bye``...)."""
    final_stats: MediaStats | None = None
    recorder: ToneRecorderApp | None = field(default=None, repr=False)
    leg: MediaLeg | None = field(default=None, repr=False)

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def recording(self) -> bytes:
        """PCM the emulator received from the caller so far (8 kHz, 16-bit LE)."""
        return b"" if self.recorder is None else self.recorder.recording()

    @property
    def stats(self) -> MediaStats | None:
        """Live media statistics while the call runs, the final ones afterwards."""
        if self.final_stats is not None:
            return self.final_stats
        return None if self.leg is None else self.leg.stats()

    @property
    def packets_sent(self) -> int:
        stats = self.stats
        return 0 if stats is None else stats.packets_sent

    @property
    def packets_received(self) -> int:
        stats = self.stats
        return 0 if stats is None else stats.packets_received

    def summary(self) -> dict[str, Any]:
        """JSON-able and secret-free."""
        return {
            "call_id": self.call_id,
            "request_uri": self.request_uri,
            "caller": self.caller,
            "state": self.state.value,
            "status": self.status,
            "reason": self.reason,
            "failed_check": self.failed_check,
            "meeting_id": self.meeting_id,
            "attendee_id": self.attendee_id,
            "codec": self.codec,
            "suite": self.suite,
            "ended_by": self.ended_by,
            "end_reason": self.end_reason,
            "history": list(self.history),
            "packets_sent": self.packets_sent,
            "packets_received": self.packets_received,
        }


class CallBook:
    """Every call in arrival order, plus change notification for waiters on the same loop."""

    def __init__(self) -> None:
        self.calls: dict[str, CallRecord] = {}
        self._changed: asyncio.Event | None = None

    def add(self, record: CallRecord) -> CallRecord:
        self.calls[record.call_id] = record
        self.changed()
        return record

    def get(self, call_id: str) -> CallRecord | None:
        return self.calls.get(call_id)

    def changed(self) -> None:
        """Wake every waiter so it re-checks its condition (cheap when nobody waits)."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def wait_until(self, condition: Callable[[], _T | None], timeout_s: float) -> _T:
        """The first truthy ``condition()`` result, re-checked after every change; TimeoutError otherwise."""
        async with asyncio.timeout(timeout_s):
            while True:
                result = condition()
                if result:
                    return result
                if self._changed is None:
                    self._changed = asyncio.Event()
                await self._changed.wait()
