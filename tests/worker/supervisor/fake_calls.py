"""Scripted stand-ins for ``media_worker.call.Call``, a virtual clock, and a change notifier for tests.

A ``FakeCall`` does what its ``Script`` says: fail at once with a reason, or ring, (wait to be answered,)
connect and hold until it is hung up or the test drops it. ``FakeCallFactory`` is the supervisor's
``CallFactory``; it keeps every call it made and reports each change to a ``Watch`` so tests wait on events,
never on time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.contract import DialRequest
from media_worker.call_job import StateListener
from media_worker.net.media_engine import MediaStats
from media_worker.outcomes import CallResult, EndReason

SAFETY_TIMEOUT_S = 10.0
"""Upper bound for any wait in these tests; reaching it means the behaviour under test did not happen."""


class Watch:
    """Wakes waiters whenever something observable may have changed (called from any thread)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def changed(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._event.set)

    async def until(self, predicate: Callable[[], bool], limit_s: float = SAFETY_TIMEOUT_S) -> None:
        self._loop = asyncio.get_running_loop()
        deadline = self._loop.time() + limit_s
        while True:
            self._event.clear()
            if predicate():
                return
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                raise AssertionError("condition not reached")
            try:
                await asyncio.wait_for(self._event.wait(), remaining)
            except TimeoutError:
                raise AssertionError("condition not reached") from None


class FakeTime:
    """A virtual monotonic clock; ``sleep`` returns when ``advance`` moves time past its deadline."""

    def __init__(self, start: float = 1000.0, watch: Watch | None = None) -> None:
        self.now = start
        self.watch = watch
        self.requested: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.requested.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), future))
        if self.watch is not None:
            self.watch.changed()
        await future

    async def advance(self, seconds: float) -> None:
        """Move time on and wake every sleeper that is due, in deadline order."""
        self.now += seconds
        while self._sleepers and self._sleepers[0][0] <= self.now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        for _ in range(5):  # let the woken tasks reach their next await
            await asyncio.sleep(0)


@dataclass
class Script:
    """What one fake call does."""

    fail_with: EndReason | None = None
    """End at once without connecting (e.g. BUSY) with ``sip_status``."""
    sip_status: int | None = None
    wait_for_answer: bool = False
    """Ring, then wait for ``FakeCall.answer()`` before connecting."""
    ignore_hangup: bool = False
    """Never end (a peer that never answers our BYE): only cancellation stops it."""


def _media() -> MediaStats:
    return MediaStats(
        packets_sent=500,
        packets_received=498,
        packets_lost=2,
        loss_fraction=0.004,
        jitter_ms=3.5,
        rtt_ms=40.0,
        srtp_failures=0,
        mos=4.3,
    )


class FakeCall:
    """Implements ``media_worker.call_job.DialedCall``."""

    def __init__(self, job: DialRequest, on_state: StateListener, script: Script, watch: Watch, number: int):
        self.job = job
        self.script = script
        self.number = number
        self.hangups: list[EndReason] = []
        self.finished = False
        self._on_state = on_state
        self._watch = watch
        self._state = "dialing"
        self._sip_call_id = f"fake-{number}@127.0.0.1"
        self._answered = asyncio.Event()
        self._ended = asyncio.Event()
        self._end_reason: EndReason | None = None

    @property
    def state(self) -> str:
        return self._state

    @property
    def sip_call_id(self) -> str | None:
        return self._sip_call_id

    def answer(self) -> None:
        self._answered.set()

    def drop(self, reason: EndReason = EndReason.REMOTE_BYE) -> None:
        """The far end ends the call."""
        if self._end_reason is None:
            self._end_reason = reason
        self._ended.set()

    def hangup(self, reason: EndReason) -> None:
        self.hangups.append(reason)
        self._watch.changed()
        if self.script.ignore_hangup:
            return
        if self._end_reason is None:
            self._end_reason = reason
        self._ended.set()

    def snapshot(self) -> dict[str, Any]:
        return {"label": self.job.call_id, "state": self._state, "sip_call_id": self._sip_call_id}

    async def run(self) -> CallResult:
        try:
            return await self._run()
        finally:
            self.finished = True
            self._watch.changed()

    async def _run(self) -> CallResult:
        if self.script.fail_with is not None:
            return self._result(self.script.fail_with, connected=False, status=self.script.sip_status)
        if self._end_reason is not None:  # hung up before dialing
            return self._result(self._end_reason, connected=False, status=None)
        self._set_state("ringing")
        if self.script.wait_for_answer:
            await _first(self._answered.wait(), self._ended.wait())
            if self._end_reason is not None:
                return self._result(self._end_reason, connected=False, status=487)
        self._set_state("connected")
        await self._ended.wait()
        self._set_state("ended")
        assert self._end_reason is not None
        return self._result(self._end_reason, connected=True, status=200)

    def _set_state(self, state: str) -> None:
        self._state = state
        self._on_state(state)
        self._watch.changed()

    def _result(self, reason: EndReason, *, connected: bool, status: int | None) -> CallResult:
        return CallResult(
            end_reason=reason,
            connected=connected,
            sip_status=status,
            detail="scripted",
            sip_call_id=self._sip_call_id,
            codec="PCMU" if connected else None,
            suite="AES_CM_128_HMAC_SHA1_80" if connected else None,
            setup_latency_s=0.05 if connected else None,
            duration_s=12.5 if connected else 0.0,
            media=_media() if connected else MediaStats(0, 0, 0, 0.0, 0.0, None, 0, 1.0),
        )


async def _first(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


@dataclass
class FakeCallFactory:
    """A ``CallFactory``: the next script from ``scripts`` (then ``default``) for each call it makes."""

    watch: Watch
    scripts: list[Script] = field(default_factory=list)
    default: Script = field(default_factory=Script)
    calls: list[FakeCall] = field(default_factory=list)
    peak: int = 0
    """The most calls that were live at once."""

    def __call__(self, job: DialRequest, on_state: StateListener) -> FakeCall:
        script = self.scripts.pop(0) if self.scripts else self.default
        call = FakeCall(job, on_state, script, self.watch, len(self.calls) + 1)
        self.calls.append(call)
        self.peak = max(self.peak, len(self.live()))
        self.watch.changed()
        return call

    def connected(self) -> list[FakeCall]:
        return [c for c in self.calls if c.state == "connected"]

    def live(self) -> list[FakeCall]:
        return [c for c in self.calls if not c.finished]
