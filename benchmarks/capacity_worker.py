"""Both sides of the capacity benchmark on one set of calls: the worker's media, then the bare reference loop.

:class:`CapacityBench` places N real calls (``SipConnectionPool`` + ``MediaEngine`` + ``Call``, media app
``silence``) to the emulator process and then alternates measurement windows:

* **worker** windows: the production media engine drives every call;
* **reference** windows: the engine is paused (clock stopped, sockets unregistered) and the bare loop of
  :mod:`benchmarks.capacity_bare` drives the same sockets with the same negotiated keys, against the same
  emulator; then the engine resumes.

Each window starts with a warm-up after the swap and measures this process's CPU, the shared clock's tick
lateness, per-stream send jitter of a sample of streams (the instant ``sendto`` returned against the frame's
RTP timestamp, minus the stream's median lateness), arrival jitter of the emulator's packets on the same
streams, loss, SRTP failures, and the emulator's CPU and view of our streams.

The sampled worker legs are described in :mod:`benchmarks.capacity_engine`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from media_worker.call import Call
from media_worker.call_plan import CallPlan
from media_worker.net.media_engine import MediaLeg, PortAllocator
from media_worker.net.sip_pool import SipConnectionPool
from media_worker.net.tls import client_context
from media_worker.outcomes import CallResult, EndReason

from .capacity_bare import BareLoop, BareStream
from .capacity_common import PTIME, CpuMark, PeerProcess, TimingSamples, percentile, rss_kib, system_busy_s
from .capacity_engine import ObservedEngine, unwrapped

__all__ = ["CapacityBench", "WorkerConfig"]

VC_HOST: Final = "vc.localtest"
JOIN_NUMBER: Final = "+17035550122"
FROM_NUMBER: Final = "+12065550100"
_SETUP_SLACK_S: Final = 30.0
_END_TIMEOUT_S: Final = 30.0
_SETTING_UP: Final = frozenset({"dialing", "ringing"})
_REFERENCE_SSRC_BASE: Final = 0x5EF0_0000


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    calls: int
    hold_s: float
    warmup_s: float
    setup_rate: float
    jitter_streams: int


@dataclass(slots=True)
class _Mark:
    cpu: CpuMark
    busy_s: float
    rss_kib: int
    peer: dict[str, Any]
    media: dict[str, int]


def _leg_totals(legs: list[MediaLeg]) -> dict[str, int]:
    received = expected = sent = failures = 0
    for leg in legs:
        session = leg.session
        if session is None:
            continue
        counters = session.counters
        received += counters.packets_received
        sent += counters.packets_sent
        failures += counters.srtp_auth_failures + counters.srtp_replays + counters.srtp_malformed
        if session.receiver is not None:
            expected += session.receiver.expected
    return {"received": received, "expected": expected, "sent": sent, "srtp_failures": failures}


class CapacityBench:
    """N calls to the emulator, measured in alternating worker and reference windows."""

    def __init__(self, config: WorkerConfig, peer: PeerProcess, ca_file: str, port: int) -> None:
        self.config = config
        self._peer = peer
        self._ca_file = ca_file
        self._port = port
        capacity = int((config.warmup_s + config.hold_s) / PTIME) + 200
        sampled = min(config.jitter_streams, config.calls)
        self.arrivals, self.sends = TimingSamples(sampled, capacity), TimingSamples(sampled, capacity)
        self.engine = ObservedEngine(self.arrivals, self.sends)
        self.pool = SipConnectionPool(ssl_context=client_context(ca_file=ca_file), resolver=self._resolve)
        self.calls: dict[Call, asyncio.Task[CallResult]] = {}
        self.states: dict[int, str] = {}
        self.rss_before = rss_kib()
        self.setup_s = 0.0
        self._bare: BareLoop | None = None

    @staticmethod
    async def _resolve(host: str, port: int) -> list[tuple[str, int]]:
        return [("127.0.0.1", port)]  # the emulator's certificate names vc.localtest

    def held(self) -> int:
        return sum(1 for state in self.states.values() if state == "connected")

    async def start(self) -> None:
        """Place the calls at the configured rate and wait until none is still being set up."""
        loop = asyncio.get_running_loop()
        self.engine.start_clock()
        ports = PortAllocator("127.0.0.1", 20000, 29999)
        uri = f"sip:{JOIN_NUMBER}@{VC_HOST}:{self._port};transport=tls;X-chime-join-token=capacity-token"
        settled = asyncio.Event()
        states = self.states

        def on_state(state: str, index: int) -> None:
            states[index] = state
            if state not in _SETTING_UP and not any(s in _SETTING_UP for s in states.values()):
                settled.set()

        start = loop.time()
        for index in range(self.config.calls):
            plan = CallPlan.for_uri(uri, FROM_NUMBER, media_app="silence", label=f"capacity-{index}")
            states[index] = "dialing"
            settled.clear()
            call = Call(
                plan,
                pool=self.pool,
                engine=self.engine,
                ports=ports,
                media_public_ip=None,
                media_timeout_s=30.0,
                on_state=partial(on_state, index=index),
            )
            self.calls[call] = loop.create_task(call.run(), name=f"capacity-call-{index}")
            await asyncio.sleep(max(0.0, start + (index + 1) / self.config.setup_rate - loop.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(settled.wait(), _SETUP_SLACK_S)
        self.setup_s = loop.time() - start

    async def close(self) -> list[str]:
        """Hang up every call and stop the engine; how the calls ended."""
        for call in self.calls:
            call.hangup(EndReason.LOCAL_HANGUP)
        tasks = list(self.calls.values())
        done, pending = await asyncio.wait(tasks, timeout=_END_TIMEOUT_S) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        await self.pool.close()
        await self.engine.stop_clock()
        return sorted({task.result().end_reason.value for task in done if not task.cancelled()})

    async def _mark(self, media: dict[str, int]) -> _Mark:
        mark, busy, rss = CpuMark.now(), system_busy_s(), rss_kib()
        reply = await asyncio.to_thread(self._peer.request, "mark")
        return _Mark(mark, busy, rss, reply, media)

    async def _window(
        self, totals: Callable[[], dict[str, int]], sampling: Callable[[bool], None] = lambda on: None
    ) -> tuple[_Mark, _Mark]:
        """Warm up, then measure one window with the samplers on."""
        await asyncio.sleep(self.config.warmup_s)
        self.arrivals.clear()
        self.sends.clear()
        start = await self._mark(totals())
        self.arrivals.active = self.sends.active = True
        sampling(True)
        await asyncio.sleep(self.config.hold_s)
        sampling(False)
        self.arrivals.active = self.sends.active = False
        end = await self._mark(totals())
        return start, end

    async def worker_window(self) -> dict[str, Any]:
        lateness: list[float] = []
        bursts: list[float] = []
        started = 0.0

        def on_tick(deadline: float, finished: bool) -> None:
            # time.monotonic() shares loop.time()'s clock but not uvloop's millisecond granularity.
            nonlocal started
            if not self.sends.active:
                return
            if finished:
                bursts.append(time.monotonic() - started)
            else:
                started = time.monotonic()
                lateness.append(started - deadline)

        self.engine.on_tick = on_tick
        try:
            start, end = await self._window(lambda: _leg_totals(self.engine.legs))
        finally:
            self.engine.on_tick = None
        rfc3550_ms = [leg.stats().jitter_ms for leg in self.engine.live if leg.session is not None]
        far = {key: end.peer[key] - start.peer[key] for key in ("received", "expected")}
        lost_there = max(far["expected"] - far["received"], 0)
        return _common_figures(self.config, start, end, self.sends, self.arrivals) | {
            "tick_lateness_p50_ms": round(1000 * percentile(lateness, 50), 3),
            "tick_lateness_p99_ms": round(1000 * percentile(lateness, 99), 3),
            "tick_burst_p99_ms": round(1000 * percentile(bursts, 99), 3),
            "rfc3550_jitter_p99_ms": round(percentile(rfc3550_ms, 99), 3),
            "emulator_loss_pct": round(100 * lost_there / max(far["expected"], 1), 4),
            "emulator_rfc3550_jitter_p99_ms": round(percentile(end.peer["jitter_ms"], 99), 3),
            "held": self.held(),
            "rss_kib_per_call": round((end.rss_kib - self.rss_before) / max(self.held(), 1), 1),
        }

    def _bare_loop(self) -> BareLoop:
        """One bare stream per live call, on its socket with its SRTP context; kept across reference windows
        so that each stream's sequence numbers carry on (the emulator's replay check sees no repeat)."""
        if self._bare is None:
            streams = []
            for index, leg in enumerate(self.engine.live):
                params, session = leg.params, leg.session
                if params is None or session is None:
                    continue
                sock, sample = unwrapped(leg)
                streams.append(
                    BareStream(
                        sock,
                        params.remote_rtp,
                        protect=session.srtp.protect_rtp,
                        unprotect=session.srtp.unprotect_rtp,
                        ssrc=_REFERENCE_SSRC_BASE + index,
                        sample=sample,
                    )
                )
            self._bare = BareLoop(streams, self.arrivals, self.sends)
        return self._bare

    async def reference_window(self) -> dict[str, Any]:
        await self.engine.pause()
        bare = self._bare_loop()
        bare.lateness.clear()
        first_tick = self.engine.next_tick()
        task = asyncio.get_running_loop().create_task(bare.run(first_tick), name="capacity-reference-loop")

        def sampling(on: bool) -> None:
            bare.record_lateness = on

        try:
            start, end = await self._window(bare.totals, sampling)
        finally:
            bare.stop()
            await task
            self.engine.resume()
        sent = end.media["sent"] - start.media["sent"]
        far_received = end.peer["received"] - start.peer["received"]
        return _common_figures(self.config, start, end, self.sends, self.arrivals) | {
            "tick_lateness_p99_ms": round(1000 * percentile(bare.lateness, 99), 3),
            # The emulator's per-SSRC statistics restart at the swap, so its loss is counted against what we
            # sent (a stream's last packet may still be in flight at the mark).
            "emulator_loss_pct": round(100 * max(sent - far_received, 0) / max(sent, 1), 4),
        }


def _common_figures(
    config: WorkerConfig, start: _Mark, end: _Mark, sends: TimingSamples, arrivals: TimingSamples
) -> dict[str, Any]:
    wall = end.cpu.wall_s - start.cpu.wall_s
    cpu_s = end.cpu.cpu_s - start.cpu.cpu_s
    peer_wall = end.peer["wall_s"] - start.peer["wall_s"]
    peer_cpu = end.peer["cpu_s"] - start.peer["cpu_s"]
    media = {key: end.media[key] - start.media[key] for key in end.media}
    far_failures = end.peer["srtp_failures"] - start.peer["srtp_failures"]
    lost_here = max(media["expected"] - media["received"], 0)
    nominal = config.calls * wall / PTIME
    busy = end.busy_s - start.busy_s
    return {
        "window_start_monotonic_s": round(start.cpu.wall_s, 3),
        "window_s": round(wall, 3),
        "cpu_pct": round(100 * cpu_s / wall, 1),
        "cpu_ms_per_call_s": round(1000 * cpu_s / wall / config.calls, 4),
        "jitter_p99_ms": round(percentile(sends.jitter_ms(), 99), 3),
        "jitter_p999_ms": round(percentile(sends.jitter_ms(), 99.9), 3),
        "jitter_packets": sends.packets(),
        "arrival_jitter_p99_ms": round(percentile(arrivals.jitter_ms(), 99), 3),
        "arrival_jitter_packets": arrivals.packets(),
        "wakeups_per_s": round((end.cpu.wakeups - start.cpu.wakeups) / wall),
        "loss_pct": round(100 * lost_here / max(media["expected"], 1), 4),
        "sent_pct_of_nominal": round(100 * media["sent"] / nominal, 2) if nominal else 0.0,
        "srtp_failures": media["srtp_failures"] + far_failures,
        "emulator_cpu_pct": round(100 * peer_cpu / peer_wall, 1) if peer_wall > 0 else None,
        "other_cpu_pct": round(100 * busy / wall - 100 * cpu_s / wall - 100 * peer_cpu / peer_wall, 1),
    }
