"""Fault injection for the local stand-ins: "the next N calls of operation X fail with error Y".

Faults queue per operation and are consumed in the order they were injected; a fault with ``times=2``
fails the next two calls of that operation, then the next queued fault (if any) takes over.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Fault", "FaultInjector"]


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected failure."""

    operation: str
    """Operation name as the API model spells it, e.g. ``CreateAttendee``."""
    error: str
    """Error shape name, e.g. ``ThrottlingException``."""
    retry_after: int | None = None
    """Seconds for a ``Retry-After`` header, when the error carries one."""


class FaultInjector:
    """Thread-safe queues of pending faults, one per operation.

    ``operations`` and ``errors`` are the names this stand-in knows; anything else is refused at
    injection time so a typo fails the test that made it instead of silently injecting nothing.
    """

    def __init__(self, *, operations: Iterable[str], errors: Iterable[str]) -> None:
        self._operations = frozenset(operations)
        self._errors = frozenset(errors)
        self._lock = threading.Lock()
        self._pending: dict[str, deque[Fault]] = {}

    def inject(self, operation: str, error: str, times: int = 1, retry_after: int | None = None) -> None:
        """Make the next ``times`` calls of ``operation`` fail with ``error``."""
        if operation not in self._operations:
            raise ValueError(f"unknown operation {operation!r}; known: {sorted(self._operations)}")
        if error not in self._errors:
            raise ValueError(f"unknown error {error!r}; known: {sorted(self._errors)}")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError("times must be a positive integer")
        if retry_after is not None and (
            isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0
        ):
            raise ValueError("retry_after must be a non-negative integer or None")
        fault = Fault(operation=operation, error=error, retry_after=retry_after)
        with self._lock:
            self._pending.setdefault(operation, deque()).extend([fault] * times)

    def take(self, operation: str) -> Fault | None:
        """Consume and return the next fault for ``operation``, or ``None`` when the call should succeed."""
        with self._lock:
            queue = self._pending.get(operation)
            if not queue:
                return None
            fault = queue.popleft()
            if not queue:
                del self._pending[operation]
            return fault

    def pending(self) -> dict[str, int]:
        """How many injected failures each operation still has queued."""
        with self._lock:
            return {operation: len(queue) for operation, queue in sorted(self._pending.items())}

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._pending.clear()
