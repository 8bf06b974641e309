"""The worker side of the capacity benchmark: real pool, media engine and calls against the emulator process.

Calls are placed at a paced rate, held through a warm-up, then measured over a window: this process's CPU
and RSS, the shared clock's tick lateness, per-stream send jitter of a sample of the worker's own streams
(the instant ``sendto`` returned against the frame's RTP timestamp, minus the stream's median lateness),
per-stream arrival jitter of the emulator's packets on the same legs (which also carries the emulator
process's own scheduling), loss and SRTP failures from the sessions' counters, and the emulator's own CPU
and view of the worker's streams.

The sampling wraps only the sampled legs (a socket proxy and a per-instance ``receive_datagram``), so the
production code path of every other leg is untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from media_worker.call import Call
from media_worker.call_plan import CallPlan
from media_worker.net.media_engine import MediaEngine, MediaLeg, PortAllocator
from media_worker.net.sip_pool import SipConnectionPool
from media_worker.net.tls import client_context
from media_worker.outcomes import CallResult, EndReason
from media_worker.rtp import MediaSession
from media_worker.rtp.packet import is_rtcp

from .capacity_common import PTIME, CpuMark, PeerProcess, TimingSamples, percentile, rss_kib, system_busy_s

__all__ = ["WorkerConfig", "measure_worker"]

VC_HOST: Final = "vc.localtest"
JOIN_NUMBER: Final = "+17035550122"
FROM_NUMBER: Final = "+12065550100"
_SETUP_SLACK_S: Final = 30.0
_END_TIMEOUT_S: Final = 30.0
_SETTING_UP: Final = frozenset({"dialing", "ringing"})


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    calls: int
    hold_s: float
    warmup_s: float
    setup_rate: float
    jitter_streams: int


class ObservedEngine(MediaEngine):
    """The real engine; ``add`` also hands a few legs to the send and arrival samplers."""

    def __init__(self, arrivals: TimingSamples, sends: TimingSamples) -> None:
        super().__init__(ptime=PTIME)
        self.legs: list[MediaLeg] = []
        self.arrivals = arrivals
        self.sends = sends

    def add(self, leg: MediaLeg) -> None:
        stream = len(self.legs)
        if leg.session is not None and stream < self.arrivals.streams:
            _sample_arrivals(leg.session, self.arrivals, stream)
        if stream < self.sends.streams:
            # Installed before the engine registers the socket, so the leg reads and sends through it.
            proxy = SendStampingSocket(leg.rtp_sock, self.sends, stream)
            leg.rtp_sock = proxy  # type: ignore[assignment]  # a duck-typed proxy of the socket
        self.legs.append(leg)
        super().add(leg)


class SendStampingSocket:
    """Proxy of a sampled leg's RTP socket: stamps each RTP datagram the instant ``sendto`` returns."""

    __slots__ = ("_samples", "_sock", "_stream")

    def __init__(self, sock: socket.socket, samples: TimingSamples, stream: int) -> None:
        self._sock = sock
        self._samples = samples
        self._stream = stream

    def sendto(self, data: bytes, address: tuple[str, int]) -> int:
        sent = self._sock.sendto(data, address)
        if len(data) >= 12 and not is_rtcp(data):
            # SRTP leaves the header clear: bytes 4-7 are the RTP timestamp, i.e. the frame's clock tick.
            self._samples.add(self._stream, int.from_bytes(data[4:8], "big"), time.monotonic())
        return sent

    def recv(self, size: int) -> bytes:
        return self._sock.recv(size)

    def recvfrom(self, size: int) -> tuple[bytes, Any]:
        return self._sock.recvfrom(size)

    def fileno(self) -> int:
        return self._sock.fileno()

    def getsockname(self) -> Any:
        return self._sock.getsockname()

    def close(self) -> None:
        self._sock.close()


def _sample_arrivals(session: MediaSession, samples: TimingSamples, stream: int) -> None:
    original = session.receive_datagram

    def receive(data: bytes, now: float) -> None:
        if len(data) >= 12 and not is_rtcp(data):
            # SRTP leaves the header clear; time.monotonic() because uvloop's loop.time() has 1 ms steps.
            samples.add(stream, int.from_bytes(data[4:8], "big"), time.monotonic())
        original(data, now)

    # Instrumentation of the sampled streams only; the others run the unmodified method.
    session.receive_datagram = receive  # type: ignore[method-assign]  # per-instance wrapper on purpose


@dataclass(slots=True)
class _Window:
    mark: CpuMark
    busy_s: float
    rss_kib: int
    peer: dict[str, Any]
    legs: dict[str, int] = field(default_factory=dict)


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


async def _snapshot(engine: ObservedEngine, peer: PeerProcess) -> _Window:
    mark, busy, rss = CpuMark.now(), system_busy_s(), rss_kib()
    legs = _leg_totals(engine.legs)
    reply = await asyncio.to_thread(peer.request, "mark")
    return _Window(mark, busy, rss, reply, legs)


async def _place_calls(
    config: WorkerConfig,
    port: int,
    pool: SipConnectionPool,
    engine: MediaEngine,
    states: dict[int, str],
    calls: dict[Call, asyncio.Task[CallResult]],
) -> None:
    loop = asyncio.get_running_loop()
    ports = PortAllocator("127.0.0.1", 20000, 29999)
    uri = f"sip:{JOIN_NUMBER}@{VC_HOST}:{port};transport=tls;X-chime-join-token=capacity-token"
    start = loop.time()
    settled = asyncio.Event()

    def on_state(state: str, index: int) -> None:
        states[index] = state
        if state not in _SETTING_UP and not any(s in _SETTING_UP for s in states.values()):
            settled.set()

    for index in range(config.calls):
        plan = CallPlan.for_uri(uri, FROM_NUMBER, media_app="silence", label=f"capacity-{index}")
        states[index] = "dialing"
        settled.clear()
        call = Call(
            plan,
            pool=pool,
            engine=engine,
            ports=ports,
            media_public_ip=None,
            media_timeout_s=30.0,
            on_state=partial(on_state, index=index),
        )
        calls[call] = loop.create_task(call.run(), name=f"capacity-call-{index}")
        await asyncio.sleep(max(0.0, start + (index + 1) / config.setup_rate - loop.time()))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(settled.wait(), _SETUP_SLACK_S)


async def measure_worker(config: WorkerConfig, peer: PeerProcess, ca_file: str, port: int) -> dict[str, Any]:
    """Run the calls against the emulator at ``port`` and return the worker-side figures."""
    loop = asyncio.get_running_loop()
    capacity = int((config.warmup_s + config.hold_s + _SETUP_SLACK_S) / PTIME) + 100
    sampled = min(config.jitter_streams, config.calls)
    arrivals, sends = TimingSamples(sampled, capacity), TimingSamples(sampled, capacity)
    engine = ObservedEngine(arrivals, sends)
    lateness: list[float] = []
    bursts: list[float] = []

    started = 0.0

    def on_tick(deadline: float, finished: bool) -> None:
        # time.monotonic() shares loop.time()'s clock but not uvloop's millisecond granularity.
        nonlocal started
        if not sends.active:
            return
        if finished:
            bursts.append(time.monotonic() - started)
        else:
            started = time.monotonic()
            lateness.append(started - deadline)

    engine.on_tick = on_tick
    clock = loop.create_task(engine.run(), name="capacity-media-clock")

    async def resolve(host: str, port: int) -> list[tuple[str, int]]:
        return [("127.0.0.1", port)]  # the emulator's certificate names vc.localtest

    pool = SipConnectionPool(ssl_context=client_context(ca_file=ca_file), resolver=resolve)
    rss_before = rss_kib()
    states: dict[int, str] = {}
    calls: dict[Call, asyncio.Task[CallResult]] = {}
    try:
        setup_started = loop.time()
        await _place_calls(config, port, pool, engine, states, calls)
        setup_s = loop.time() - setup_started
        connected = sum(1 for state in states.values() if state == "connected")
        await asyncio.sleep(config.warmup_s)
        start = await _snapshot(engine, peer)
        arrivals.active = sends.active = True
        await asyncio.sleep(config.hold_s)
        arrivals.active = sends.active = False
        end = await _snapshot(engine, peer)
        held = sum(1 for state in states.values() if state == "connected")
        rfc3550_ms = [leg.stats().jitter_ms for leg in engine.legs if leg.session is not None]
    finally:
        for call in calls:
            call.hangup(EndReason.LOCAL_HANGUP)
        tasks = list(calls.values())
        done, pending = await asyncio.wait(tasks, timeout=_END_TIMEOUT_S) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        await pool.close()
        engine.stop()
        await clock
    ended = {task.result().end_reason.value for task in done if not task.cancelled()}
    return _figures(config, start, end, (sends, arrivals), lateness, bursts, rfc3550_ms) | {
        "connected": connected,
        "held": held,
        "setup_s": round(setup_s, 2),
        "end_reasons": sorted(ended),
        "rss_kib_before": rss_before,
        "rss_kib_per_call": round((end.rss_kib - rss_before) / max(held, 1), 1),
        "rss_kib_per_call_at_window_start": round((start.rss_kib - rss_before) / max(held, 1), 1),
    }


def _figures(
    config: WorkerConfig,
    start: _Window,
    end: _Window,
    samples: tuple[TimingSamples, TimingSamples],
    lateness: list[float],
    bursts: list[float],
    rfc3550_ms: list[float],
) -> dict[str, Any]:
    wall = end.mark.wall_s - start.mark.wall_s
    cpu_s = end.mark.cpu_s - start.mark.cpu_s
    peer_wall = end.peer["wall_s"] - start.peer["wall_s"]
    peer_cpu = end.peer["cpu_s"] - start.peer["cpu_s"]
    legs = {key: end.legs[key] - start.legs[key] for key in end.legs}
    far = {key: end.peer[key] - start.peer[key] for key in ("received", "expected", "sent", "srtp_failures")}
    sends, arrivals = samples
    jitter, arrival_jitter = sends.jitter_ms(), arrivals.jitter_ms()
    lost_here = max(legs["expected"] - legs["received"], 0)
    lost_there = max(far["expected"] - far["received"], 0)
    nominal = config.calls * wall / PTIME
    busy = end.busy_s - start.busy_s
    return {
        "window_s": round(wall, 3),
        "cpu_pct": round(100 * cpu_s / wall, 1),
        "cpu_ms_per_call_s": round(1000 * cpu_s / wall / config.calls, 4),
        "tick_lateness_p50_ms": round(1000 * percentile(lateness, 50), 3),
        "tick_lateness_p99_ms": round(1000 * percentile(lateness, 99), 3),
        "tick_burst_p99_ms": round(1000 * percentile(bursts, 99), 3),
        "jitter_p99_ms": round(percentile(jitter, 99), 3),
        "jitter_p999_ms": round(percentile(jitter, 99.9), 3),
        "jitter_streams": sends.streams,
        "jitter_packets": sends.packets(),
        "arrival_jitter_p99_ms": round(percentile(arrival_jitter, 99), 3),
        "arrival_jitter_p999_ms": round(percentile(arrival_jitter, 99.9), 3),
        "arrival_jitter_packets": arrivals.packets(),
        "wakeups_per_s": round((end.mark.wakeups - start.mark.wakeups) / wall),
        "rfc3550_jitter_p99_ms": round(percentile(rfc3550_ms, 99), 3),
        "loss_pct": round(100 * lost_here / max(legs["expected"], 1), 4),
        "sent_pct_of_nominal": round(100 * legs["sent"] / nominal, 2) if nominal else 0.0,
        "srtp_failures": legs["srtp_failures"] + far["srtp_failures"],
        "emulator_cpu_pct": round(100 * peer_cpu / peer_wall, 1) if peer_wall > 0 else None,
        "emulator_loss_pct": round(100 * lost_there / max(far["expected"], 1), 4),
        "emulator_rfc3550_jitter_p99_ms": round(percentile(end.peer["jitter_ms"], 99), 3),
        "other_cpu_pct": round(100 * busy / wall - 100 * cpu_s / wall - 100 * peer_cpu / peer_wall, 1),
    }
