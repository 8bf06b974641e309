"""Worker metrics: Powertools Metrics as CloudWatch embedded metric format (EMF) lines on stdout.

Outside Lambda nothing flushes for us, so the worker flushes every ``interval_s`` (``run``) and once more at
exit (``flush``). Counts and per-call figures go into the main blob (dimension ``service`` only, good for
alarms); a breakdown by reason (``CallsFailed``, ``JobsRejected``) is a separate single-metric blob with
``service`` + ``reason``. ``ActiveCalls`` is sampled at every flush. Values never carry a join token, and
reason dimensions are fixed vocabularies (``EndReason`` values, job rejection codes), never free text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from media_worker.net.media_engine import MediaStats

__all__ = [
    "ACTIVE_CALLS",
    "CALLS_ATTEMPTED",
    "CALLS_CONNECTED",
    "CALLS_FAILED",
    "CALL_DURATION_SEC",
    "DEFAULT_NAMESPACE",
    "DEFAULT_SERVICE",
    "JITTER_MS",
    "JOBS_REJECTED",
    "MOS",
    "PACKET_LOSS_PCT",
    "REDIALS",
    "SETUP_LATENCY_MS",
    "WorkerMetrics",
]

DEFAULT_NAMESPACE: Final = "ChimeDialout"
DEFAULT_SERVICE: Final = "media-worker"

CALLS_ATTEMPTED: Final = "CallsAttempted"
CALLS_CONNECTED: Final = "CallsConnected"
CALLS_FAILED: Final = "CallsFailed"  # dimension: reason
SETUP_LATENCY_MS: Final = "SetupLatencyMs"
ACTIVE_CALLS: Final = "ActiveCalls"
CALL_DURATION_SEC: Final = "CallDurationSec"
PACKET_LOSS_PCT: Final = "PacketLossPct"
JITTER_MS: Final = "JitterMs"
MOS: Final = "Mos"
JOBS_REJECTED: Final = "JobsRejected"  # dimension: reason (invalid | duplicate)
REDIALS: Final = "Redials"

_MAX_DIMENSION_VALUE: Final = 250


class WorkerMetrics:
    """The worker's metric set. Use from the event loop thread only: Powertools keeps one set per process."""

    def __init__(
        self,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        service: str = DEFAULT_SERVICE,
        active_calls: Callable[[], int] = lambda: 0,
    ) -> None:
        self._namespace = namespace
        self._service = service
        self._metrics = Metrics(namespace=namespace, service=service)
        self.active_calls = active_calls
        """Sampled into ``ActiveCalls`` at each flush (the supervisor sets it to its live count)."""

    def call_attempted(self) -> None:
        self._add(CALLS_ATTEMPTED, MetricUnit.Count, 1)

    def call_connected(self, setup_latency_s: float | None) -> None:
        self._add(CALLS_CONNECTED, MetricUnit.Count, 1)
        if setup_latency_s is not None:
            self._add(SETUP_LATENCY_MS, MetricUnit.Milliseconds, round(setup_latency_s * 1000.0, 1))

    def call_failed(self, reason: str) -> None:
        self._count_by_reason(CALLS_FAILED, reason)

    def job_rejected(self, reason: str) -> None:
        self._count_by_reason(JOBS_REJECTED, reason)

    def redialed(self) -> None:
        self._add(REDIALS, MetricUnit.Count, 1)

    def call_ended(self, duration_s: float, media: MediaStats | None) -> None:
        """Figures of a call that was connected: how long it lasted and how its media fared."""
        self._add(CALL_DURATION_SEC, MetricUnit.Seconds, round(max(duration_s, 0.0), 3))
        if media is not None and media.packets_received > 0:
            self._add(PACKET_LOSS_PCT, MetricUnit.Percent, round(media.loss_fraction * 100.0, 3))
            self._add(JITTER_MS, MetricUnit.Milliseconds, round(media.jitter_ms, 3))
            self._add(MOS, MetricUnit.NoUnit, media.mos)

    def flush(self) -> None:
        """Sample ``ActiveCalls`` and print the pending blob."""
        self._add(ACTIVE_CALLS, MetricUnit.Count, self.active_calls())
        self._metrics.flush_metrics()

    async def run(
        self, interval_s: float = 60.0, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        """Flush every ``interval_s`` until cancelled (the caller flushes once more at exit)."""
        while True:
            await sleep(interval_s)
            self.flush()

    def _add(self, name: str, unit: MetricUnit, value: float) -> None:
        self._metrics.add_metric(name=name, unit=unit, value=value)

    def _count_by_reason(self, name: str, reason: str) -> None:
        if not 0 < len(reason) <= _MAX_DIMENSION_VALUE:
            reason = "unknown"
        self._add(name, MetricUnit.Count, 1)
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=1,
            namespace=self._namespace,
            default_dimensions={"service": self._service, "reason": reason},
        ):
            pass  # The blob is printed when the context exits.
