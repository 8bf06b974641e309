"""When and how soon the worker re-dials a leg that dropped while the meeting still wants it.

A call that was connected and then lost its leg (``EndReason.is_redialable``: remote BYE, broken TLS
connection, media timeout, session timer expiry) is dialed again by the same worker
(``CallRegistry.restart_dialing``). Once a re-dial is under way, a failure to connect at all (connect failed,
503) continues the chain too: the Voice Connector's addresses change and the next resolution may reach a
healthy one. Refusals (busy, rejected, crypto or codec mismatch) would fail again and end it. Re-dials are
bounded and spaced with exponential backoff plus jitter so a fleet of workers that lost the same connector
does not come back in lock step.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from media_worker.outcomes import EndReason

__all__ = ["RETRY_CONNECT_REASONS", "RedialPolicy"]

#: Failures to connect that a re-dial already under way retries.
RETRY_CONNECT_REASONS: Final[frozenset[EndReason]] = frozenset(
    {EndReason.CONNECT_FAILED, EndReason.UNAVAILABLE, EndReason.CONNECTION_LOST}
)


@dataclass(frozen=True, slots=True)
class RedialPolicy:
    """At most ``max_redials`` re-dials per job; re-dial n waits ``base_s * 2**(n-1)`` (capped), jittered."""

    max_redials: int
    base_s: float = 1.0
    cap_s: float = 30.0
    jitter: Callable[[], float] = field(default=random.random, repr=False)
    """Returns a number in [0, 1): the delay is scaled into [50 %, 100 %] of the exponential value."""

    def __post_init__(self) -> None:
        if self.max_redials < 0:
            raise ValueError("max_redials must not be negative")
        if self.base_s < 0 or self.cap_s < self.base_s:
            raise ValueError("need 0 <= base_s <= cap_s")

    def should_redial(self, end_reason: EndReason, *, connected: bool, redials_done: int) -> bool:
        """``connected``: this attempt was answered; ``redials_done``: re-dials already made for the job."""
        if redials_done >= self.max_redials:
            return False
        if connected:
            return end_reason.is_redialable
        return redials_done > 0 and end_reason in RETRY_CONNECT_REASONS

    def backoff_s(self, redial: int) -> float:
        """Delay before re-dial number ``redial`` (1 for the first re-dial)."""
        if redial < 1:
            raise ValueError("redial numbers start at 1")
        ceiling = min(self.cap_s, self.base_s * 2.0 ** min(redial - 1, 30))
        return ceiling * (0.5 + 0.5 * self.jitter())
