"""One media clock for every call in the process: ticks on an absolute schedule ``start + n * ptime``.

Deadlines are computed from the start time, never by adding up sleeps, so they cannot drift (the
arithmetic aiortc's ``AudioStreamTrack`` uses, with ``now`` passed in). A caller that fell far behind
(a stalled event loop) is not handed a burst of catch-up ticks: beyond ``max_catch_up`` the overdue ticks
are skipped and counted, and the caller advances its RTP timestamps by the skipped frames.
"""

from __future__ import annotations

import math

__all__ = ["MediaClock"]


class MediaClock:
    """Absolute-schedule ticker. Tick *n* (counting from 0) is due at ``start + n * ptime``."""

    __slots__ = ("_next_tick", "max_catch_up", "ptime", "skipped_ticks", "start")

    def __init__(self, ptime: float = 0.020, *, start: float, max_catch_up: int = 3) -> None:
        if ptime <= 0:
            raise ValueError(f"ptime must be positive, not {ptime}")
        if max_catch_up < 1:
            raise ValueError(f"max_catch_up must be at least 1, not {max_catch_up}")
        self.ptime = ptime
        self.start = start
        self.max_catch_up = max_catch_up
        """Most ticks :meth:`due` hands out at once; older overdue ticks are skipped."""
        self.skipped_ticks = 0
        """Ticks dropped because the caller was more than ``max_catch_up`` ticks late."""
        self._next_tick = 0

    def __repr__(self) -> str:
        return f"MediaClock(ptime={self.ptime}, next_tick={self._next_tick}, skipped={self.skipped_ticks})"

    @property
    def ticks(self) -> int:
        """Index of the next tick; equals ticks handed out plus ticks skipped."""
        return self._next_tick

    def deadline(self, tick: int) -> float:
        """When tick number ``tick`` is due."""
        return self.start + tick * self.ptime

    def next_deadline(self) -> float:
        """When the next tick is due: arm the event loop timer for this."""
        return self.deadline(self._next_tick)

    def _ticks_elapsed(self, now: float) -> int:
        """Number of ticks whose deadline is <= now, consistent with :meth:`deadline` despite rounding."""
        n = math.floor((now - self.start) / self.ptime) + 1
        while n > 0 and self.deadline(n - 1) > now:
            n -= 1
        while self.deadline(n) <= now:
            n += 1
        return max(n, 0)

    def due(self, now: float) -> int:
        """How many ticks to process now (0 if none); skips and counts ticks beyond ``max_catch_up``."""
        if now < self.deadline(self._next_tick):
            return 0
        due = self._ticks_elapsed(now) - self._next_tick
        if due > self.max_catch_up:
            skipped = due - self.max_catch_up
            self.skipped_ticks += skipped
            self._next_tick += skipped
            due = self.max_catch_up
        self._next_tick += due
        return due
