"""Dial pacing per Voice Connector host.

A Voice Connector enforces a calls-per-second limit on termination (1 by default) and refuses INVITEs over
it, so the worker spaces its dials to each host itself. The pacer is a token bucket per host written as a
generic cell rate algorithm: each dial reserves the next free slot, so concurrent waiters queue up in order
and a burst of ``burst`` dials is allowed after an idle spell. Hosts are independent of each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["DialPacer"]


class DialPacer:
    """``await pacer.wait(host)`` returns when a dial to ``host`` may start.

    ``clock`` is a monotonic clock in seconds and ``sleep`` an awaitable sleep, both injectable so tests can
    drive time.
    """

    def __init__(
        self,
        calls_per_second: float,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        burst: int = 1,
    ) -> None:
        if calls_per_second <= 0:
            raise ValueError("calls_per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._interval = 1.0 / calls_per_second
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._next_due: dict[str, float] = {}  # per host: the theoretical arrival time of the next dial

    @property
    def interval_s(self) -> float:
        return self._interval

    def reserve(self, host: str) -> float:
        """Reserve the next slot for ``host``; returns how long the caller must wait before dialing."""
        now = self._clock()
        due = max(self._next_due.get(host, now), now)
        start = max(now, due - self._tolerance)
        self._next_due[host] = due + self._interval
        self._forget_idle_hosts(now)
        return start - now

    async def wait(self, host: str) -> float:
        """Wait for this dial's slot; returns the seconds waited (0.0 when the host was idle)."""
        delay = self.reserve(host)
        if delay > 0:
            await self._sleep(delay)
        return delay

    def _forget_idle_hosts(self, now: float) -> None:
        # A host whose next slot is in the past is idle: its entry carries no information any more.
        if len(self._next_due) > 64:
            for host in [h for h, due in self._next_due.items() if due < now - self._tolerance]:
                del self._next_due[host]
