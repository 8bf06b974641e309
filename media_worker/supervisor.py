"""The supervisor: takes dial jobs from SQS while it has room, runs each as a ``CallJob``, drains on SIGTERM.

Capacity is the whole admission policy: the worker long-polls only while it holds fewer than ``max_calls``
jobs and asks for no more messages than it has free slots, so the queue's backlog (and ECS scaling on it)
sees exactly the work no worker could take. Everything per call (claim, pacing, heartbeat, re-dial, record
writes, message deletion) lives in ``CallJob``.

Drain (``drain()``, called from the SIGTERM handler): stop polling, hang up every call with ``DRAINED``,
make messages that were not started visible again, and let ``run()`` return within ``drain_timeout_s`` even
if some call does not finish its BYE in time (those tasks are cancelled).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from aws_lambda_powertools import Logger

from chalicelib.call_registry import CallRegistry
from media_worker.call_job import CallFactory, CallJob, JobServices
from media_worker.dial_pacer import DialPacer
from media_worker.dial_queue import DialQueueConsumer, ReceivedMessage
from media_worker.metrics import WorkerMetrics
from media_worker.redial import RedialPolicy
from media_worker.settings import WorkerSettings

__all__ = ["Supervisor", "SupervisorConfig"]

# With short polling (WaitTimeSeconds 0, local runs only) an empty queue would otherwise be polled in a loop.
_SHORT_POLL_PAUSE_S: Final = 0.01


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    worker_id: str
    max_calls: int
    lease_s: float = 30.0
    heartbeat_s: float = 5.0
    drain_timeout_s: float = 25.0
    calls_per_second: float = 1.0
    max_redials: int = 3
    redial_base_s: float = 1.0
    redial_cap_s: float = 30.0
    error_backoff_s: float = 5.0
    """Pause after a failed receive (SQS unreachable, throttled) before polling again."""

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> SupervisorConfig:
        return cls(
            worker_id=settings.worker_id,
            max_calls=settings.max_calls,
            lease_s=settings.lease_s,
            heartbeat_s=settings.heartbeat_s,
            drain_timeout_s=settings.drain_timeout_s,
            calls_per_second=settings.calls_per_second,
            max_redials=settings.max_redials,
        )


class Supervisor:
    """Consumes the dial queue. ``clock`` (monotonic) and ``sleep`` are injectable for tests."""

    def __init__(
        self,
        *,
        config: SupervisorConfig,
        queue: DialQueueConsumer,
        registry: CallRegistry,
        make_call: CallFactory,
        metrics: WorkerMetrics,
        logger: Logger,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        pacer: DialPacer | None = None,
        redial: RedialPolicy | None = None,
    ) -> None:
        self.config = config
        self._queue = queue
        self._logger = logger
        self._metrics = metrics
        self._services = JobServices(
            registry=registry,
            queue=queue,
            metrics=metrics,
            pacer=pacer or DialPacer(config.calls_per_second, clock=clock, sleep=sleep),
            make_call=make_call,
            redial=redial
            or RedialPolicy(config.max_redials, base_s=config.redial_base_s, cap_s=config.redial_cap_s),
            logger=logger,
            worker_id=config.worker_id,
            lease_s=config.lease_s,
            heartbeat_s=config.heartbeat_s,
            clock=clock,
            sleep=sleep,
        )
        self._jobs: dict[asyncio.Task[None], CallJob] = {}
        self._polling = False
        self._draining = False
        self._drain_requested = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self.receives = 0
        """How many receive requests were made (observability and tests)."""
        metrics.active_calls = self.active_calls

    # -- status (health server) -----------------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self._draining

    def active_calls(self) -> int:
        """Jobs holding a claimed call (dialing, connected or between re-dials)."""
        return sum(1 for job in self._jobs.values() if job.claimed)

    def is_ready(self) -> bool:
        return self._polling and not self._draining and len(self._jobs) < self.config.max_calls

    def status(self) -> dict[str, Any]:
        return {
            "worker_id": self.config.worker_id,
            "polling": self._polling,
            "draining": self._draining,
            "jobs": len(self._jobs),
            "active_calls": self.active_calls(),
            "max_calls": self.config.max_calls,
        }

    def call_snapshots(self) -> list[dict[str, Any]]:
        return [job.snapshot() for job in self._jobs.values()]

    # -- running --------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll until ``drain()`` is called, then finish draining and return (re-raises a poll-loop crash)."""
        self._polling = True
        poller = asyncio.create_task(self._poll_loop(), name="dial-queue-poll")
        drain = asyncio.create_task(self._drain_requested.wait())
        await asyncio.wait({poller, drain}, return_when=asyncio.FIRST_COMPLETED)
        if not self._draining:
            self._logger.error("dial queue polling stopped unexpectedly; draining")
            self.drain()
        with contextlib.suppress(asyncio.CancelledError):
            await drain
        await self._finish_drain(poller)
        self._polling = False
        crash = None if poller.cancelled() else poller.exception()
        if crash is not None:
            raise crash

    def drain(self) -> None:
        """Stop polling and give every job back. Safe to call more than once and from a signal handler."""
        if self._draining:
            return
        self._draining = True
        self._logger.info("draining", extra={"jobs": len(self._jobs)})
        for job in self._jobs.values():
            job.drain()
        self._drain_requested.set()
        self._slot_freed.set()

    async def poll_once(self) -> int:
        """One receive for as many messages as there are free slots; returns how many jobs were started."""
        free = self.config.max_calls - len(self._jobs)
        if free <= 0 or self._draining:
            return 0
        self.receives += 1
        messages = await self._queue.receive(free)
        if self._draining:
            await self._release(messages)
            return 0
        for message in messages:
            self._start(message)
        return len(messages)

    async def _poll_loop(self) -> None:
        while not self._draining:
            if len(self._jobs) >= self.config.max_calls:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                started = await self.poll_once()
            except Exception as exc:  # SQS unreachable or throttled: say so, pause, poll again
                self._logger.warning("dial queue receive failed", extra={"error": repr(exc)})
                await self._pause(self.config.error_backoff_s)
                continue
            if started == 0 and self._queue.wait_s == 0:
                await self._pause(_SHORT_POLL_PAUSE_S)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drain_requested.wait(), seconds)

    async def _finish_drain(self, poller: asyncio.Task[None]) -> None:
        jobs = set(self._jobs)
        if jobs:
            _, still_running = await asyncio.wait(jobs, timeout=self.config.drain_timeout_s)
            if still_running:
                self._logger.warning(
                    "drain timeout: cancelling the rest", extra={"tasks": len(still_running)}
                )
                for task in still_running:
                    task.cancel()
                await asyncio.gather(*still_running, return_exceptions=True)
        if not poller.done():
            # A long poll in flight: abandon it rather than wait up to 20 s (it hands back what it gets).
            poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
        self._logger.info("drained")

    def _start(self, message: ReceivedMessage) -> None:
        job = CallJob(message, self._services)
        task = asyncio.create_task(job.run(), name=f"dial-job-{message.message_id}")
        self._jobs[task] = job
        task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        job = self._jobs.pop(task, None)
        self._slot_freed.set()
        if task.cancelled() or job is None:
            return
        exc = task.exception()
        if exc is not None:
            self._logger.error(
                "dial job crashed",
                extra={"message_id": job.message.message_id, "error": repr(exc)},
                exc_info=(type(exc), exc, exc.__traceback__),
            )

    async def _release(self, messages: list[ReceivedMessage]) -> None:
        results = await asyncio.gather(
            *(self._queue.set_visibility(m, 0) for m in messages), return_exceptions=True
        )
        failed = sum(isinstance(r, BaseException) for r in results)
        if failed:
            self._logger.warning("could not release received messages", extra={"failed": failed})
