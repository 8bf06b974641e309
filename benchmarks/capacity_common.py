"""Shared pieces of the capacity benchmark: CPU/RSS probes, per-stream timing samples and the peer process.

Every figure is measured over the same kind of window on both sides of a comparison: process CPU is
``getrusage`` user+sys divided by wall time, RSS comes from ``/proc/self/status``, per-stream jitter is a
packet's lateness against its RTP timestamp minus that stream's own median lateness (what a receiver's jitter
buffer sees). The same :class:`TimingSamples` serve two instants of a packet's life: when this process
sent it (the RTP timestamp marks its scheduled tick, so lateness is send time minus deadline up to a
per-stream constant that the median removes) and when this process received it.
"""

from __future__ import annotations

import json
import os
import queue
import resource
import subprocess
import sys
import threading
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = [
    "CLOCK_RATE",
    "PTIME",
    "REPO_ROOT",
    "CpuMark",
    "PeerProcess",
    "TimingSamples",
    "choose_cores",
    "percentile",
    "pin_to",
    "rss_kib",
    "system_busy_s",
]

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
PTIME: Final = 0.020
CLOCK_RATE: Final = 8000
_PEER_SCRIPT: Final = Path(__file__).resolve().with_name("capacity_peer.py")
_REPLY_TIMEOUT_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class CpuMark:
    """Process CPU seconds (user+sys, every thread) and monotonic wall seconds at one instant."""

    cpu_s: float
    wall_s: float
    wakeups: int = 0
    """Voluntary context switches so far: how often the process slept and was woken (epoll waits)."""

    @classmethod
    def now(cls) -> CpuMark:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return cls(usage.ru_utime + usage.ru_stime, time.monotonic(), usage.ru_nvcsw)

    def percent_until(self, later: CpuMark) -> float:
        wall = later.wall_s - self.wall_s
        return 100.0 * (later.cpu_s - self.cpu_s) / wall if wall > 0 else 0.0


def rss_kib() -> int:
    """Resident set size of this process (VmRSS) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def system_busy_s() -> float:
    """CPU seconds every core spent busy since boot (user+nice+system+irq+softirq+steal), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(value) for value in fields]
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
    return busy / os.sysconf("SC_CLK_TCK")


def choose_cores() -> tuple[int | None, int | None]:
    """(worker core, peer core): the first two CPUs this process may use, or None when there is only one."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    return allowed[0], allowed[1]


def pin_to(core: int | None) -> None:
    if core is not None:
        os.sched_setaffinity(0, {core})


def percentile(values: list[float] | np.ndarray[Any, Any], q: float) -> float:
    if len(values) == 0:
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=float), q))


class TimingSamples:
    """Time and RTP timestamp of every packet of a few streams (sent or received, depending on where the
    caller records), in buffers allocated up front (so the samples do not inflate the RSS measured per
    call)."""

    def __init__(self, streams: int, capacity: int) -> None:
        self.active = False
        self._capacity = capacity
        self._instants = [array("d", bytes(8 * capacity)) for _ in range(streams)]
        self._timestamps = [array("q", bytes(8 * capacity)) for _ in range(streams)]
        self._counts = [0] * streams

    @property
    def streams(self) -> int:
        return len(self._counts)

    def clear(self) -> None:
        """Forget every sample (the buffers stay allocated)."""
        self._counts = [0] * len(self._counts)

    def add(self, stream: int, rtp_timestamp: int, instant: float) -> None:
        count = self._counts[stream]
        if self.active and count < self._capacity:
            self._instants[stream][count] = instant
            self._timestamps[stream][count] = rtp_timestamp
            self._counts[stream] = count + 1

    def jitter_ms(self) -> np.ndarray[Any, Any]:
        """Every sampled packet's lateness minus its stream's median lateness, in ms (late is positive)."""
        parts: list[np.ndarray[Any, Any]] = []
        for instants, stamps, count in zip(self._instants, self._timestamps, self._counts, strict=True):
            if count < 2:
                continue
            instant = np.frombuffer(instants, dtype=np.float64)[:count]
            raw = np.frombuffer(stamps, dtype=np.int64)[:count]
            # Unwrap the 32-bit RTP timestamp relative to the first sample.
            offset = (raw - raw[0]) & 0xFFFF_FFFF
            offset = np.where(offset >= 1 << 31, offset - (1 << 32), offset)
            lateness = instant - instant[0] - offset / CLOCK_RATE
            parts.append((lateness - np.median(lateness)) * 1000.0)
        return np.concatenate(parts) if parts else np.zeros(0)

    def packets(self) -> int:
        return sum(self._counts)


class PeerProcess:
    """A helper process (``capacity_peer.py``) pinned to its own core, driven by one JSON line per request."""

    def __init__(self, *args: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, *(["-O"] if sys.flags.optimize else []), str(_PEER_SCRIPT), *args],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="capacity-peer-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        for line in stdout:
            self._lines.put(line)
        self._lines.put(None)

    def reply(self, timeout_s: float = _REPLY_TIMEOUT_S) -> dict[str, Any]:
        """The next JSON line the peer prints."""
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise RuntimeError(f"the capacity peer did not answer within {timeout_s:g} s") from None
        if line is None:
            raise RuntimeError(f"the capacity peer exited (status {self._process.poll()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def request(self, command: str, **body: Any) -> dict[str, Any]:
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(json.dumps({"command": command, **body}) + "\n")
        stdin.flush()
        return self.reply()

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask the peer to quit; kill it if it does not."""
        process = self._process
        if process.poll() is None:
            try:
                if process.stdin is not None:
                    process.stdin.write(json.dumps({"command": "quit"}) + "\n")
                    process.stdin.close()
                process.wait(timeout=timeout_s)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()
        self._reader.join(timeout=timeout_s)
