"""One dial job from the queue, from receipt to the end of its call (and its re-dials).

The order of things is what makes duplicate delivery harmless and a crash recoverable:

1. parse the body (an invalid job can never succeed: log without content, count, delete);
2. wait for the dial slot of the job's Voice Connector host (pacing), then claim the call with a
   conditional write (refused: duplicate or stale message -> delete, count, no call);
3. dial; record ringing/connected on the call record; once connected *and recorded*, delete the message.
   Until then the message is kept invisible, so if this worker dies before the call is up another worker
   gets the job again (and the claim decides who dials);
4. heartbeat the lease while the job lives and read the desired state: ``ended`` -> hang up with the
   reason the control plane recorded; a refused heartbeat means another worker holds the call -> hang up;
5. a dropped leg is re-dialed (bounded, with backoff) while the record still wants the call;
6. record ended/failed with reason, SIP status and media figures; log one summary line.

Draining (SIGTERM) hangs the call up with ``DRAINED`` and gives the call back: a job not yet claimed has its
message made visible again; a claimed call keeps its record but its lease is expired at once, so the
control plane's sweeper re-dials it from another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from aws_lambda_powertools import Logger

from chalicelib.call_registry import CallRecord, CallRegistry, TransitionRejected
from chalicelib.contract import DialRequest, InvalidDialRequest
from media_worker.dial_pacer import DialPacer
from media_worker.dial_queue import DialQueueConsumer, ReceivedMessage
from media_worker.metrics import WorkerMetrics
from media_worker.outcomes import CallResult, EndReason
from media_worker.redial import RedialPolicy

__all__ = ["CallFactory", "CallJob", "DialedCall", "JobServices", "StateListener"]

StateListener = Callable[[str], None]
_DONE: Final = "__done__"


class DialedCall(Protocol):
    """What the worker needs from one call (``media_worker.call.Call`` in production)."""

    @property
    def state(self) -> str: ...

    @property
    def sip_call_id(self) -> str | None: ...

    async def run(self) -> CallResult: ...

    def hangup(self, reason: EndReason) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...


#: Builds the call for a job; the listener receives "ringing", "connected", "ending", "ended".
CallFactory = Callable[[DialRequest, StateListener], DialedCall]


@dataclass(frozen=True, slots=True)
class JobServices:
    """Everything a job shares with the others. ``clock`` is monotonic; ``sleep`` drives every timer."""

    registry: CallRegistry
    queue: DialQueueConsumer
    metrics: WorkerMetrics
    pacer: DialPacer
    make_call: CallFactory
    redial: RedialPolicy
    logger: Logger
    worker_id: str
    lease_s: float
    heartbeat_s: float
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]


class CallJob:
    """``await job.run()`` handles one received message to the end; ``job.drain()`` gives it back."""

    def __init__(self, message: ReceivedMessage, services: JobServices) -> None:
        self.message = message
        self.job: DialRequest | None = None
        self.phase = "received"
        self.call: DialedCall | None = None
        self.attempts = 0
        self._s = services
        self._stop_reason: EndReason | None = None
        self._stopped = asyncio.Event()
        self._message_settled = False
        self._claimed: CallRecord | None = None
        self._lease_lost = False
        self._connected_once = False

    @property
    def claimed(self) -> bool:
        return self._claimed is not None

    def drain(self) -> None:
        self.stop(EndReason.DRAINED)

    def stop(self, reason: EndReason) -> None:
        """Hang up (now, or as soon as the call exists) and do not re-dial; the first reason wins."""
        if self._stop_reason is not None:
            return
        self._stop_reason = reason
        self._stopped.set()
        if self.call is not None:
            self.call.hangup(reason)

    def snapshot(self) -> dict[str, Any]:
        """Secret-free: call id, attempt, phase and the live call's own snapshot."""
        live = self.call.snapshot() if self.call is not None else {}
        return {
            "call_id": self.job.call_id if self.job else None,
            "message_id": self.message.message_id,
            "phase": self.phase,
            "attempts": self.attempts,
            **live,
        }

    async def run(self) -> None:
        keeper = asyncio.create_task(self._keep_invisible())
        try:
            await self._run()
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            self.phase = "done"

    async def _run(self) -> None:
        try:
            job = DialRequest.from_json(self.message.body)
        except InvalidDialRequest as exc:
            # The error names fields and reasons only (never values), so it is safe to log.
            self._s.logger.warning(
                "invalid dial job deleted", extra={"message_id": self.message.message_id, "error": str(exc)}
            )
            self._s.metrics.job_rejected("invalid")
            await self._settle_message(release=False)
            return
        self.job = job
        if not await self._unless_stopped(self._s.pacer.wait(job.target.host)):
            await self._settle_message(release=True)
            return
        record = await asyncio.to_thread(
            self._s.registry.claim_for_dialing,
            job.call_id,
            self._s.worker_id,
            self._s.lease_s,
            attempt=job.attempt,
        )
        if record is None:
            self._s.logger.info("duplicate or stale dial job deleted", extra=self._keys())
            self._s.metrics.job_rejected("duplicate")
            await self._settle_message(release=False)
            return
        self._claimed = record
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            result = await self._dial_until_done(job, record)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        await self._finish(result)

    async def _dial_until_done(self, job: DialRequest, record: CallRecord) -> CallResult | None:
        redials = 0
        result: CallResult | None = None
        while self._stop_reason is None:
            result = await self._dial_once(job)
            if self._stop_reason is not None or not self._s.redial.should_redial(
                result.end_reason, connected=result.connected, redials_done=redials
            ):
                break
            redials += 1
            self.phase = "redialing"
            self._s.logger.info(
                "leg dropped; re-dialing", extra={**self._keys(), "end_reason": result.end_reason.value}
            )
            if not await self._unless_stopped(self._s.sleep(self._s.redial.backoff_s(redials))):
                break
            try:
                await asyncio.to_thread(
                    self._s.registry.restart_dialing,
                    job.call_id,
                    self._s.worker_id,
                    self._s.lease_s,
                    max_attempts=record.attempts + self._s.redial.max_redials,
                )
            except TransitionRejected as exc:
                # Not wanted any more, attempts used up, or another worker holds the call.
                self._s.logger.info("re-dial refused by the record", extra={**self._keys(), "why": str(exc)})
                break
            self._s.metrics.redialed()
            if not await self._unless_stopped(self._s.pacer.wait(job.target.host)):
                break
        return result

    async def _dial_once(self, job: DialRequest) -> CallResult:
        states: asyncio.Queue[str] = asyncio.Queue()
        self.attempts += 1
        self.phase = "dialing"
        self._s.metrics.call_attempted()
        try:
            call = self._s.make_call(job, states.put_nowait)
        except ValueError as exc:  # e.g. CallPlanError: the job is valid but cannot be dialed here
            self._s.logger.warning("call cannot be planned", extra={**self._keys(), "error": str(exc)})
            return _unplannable()
        self.call = call
        if self._stop_reason is not None:
            call.hangup(self._stop_reason)
        recorder = asyncio.create_task(self._record_states(states, call, self._s.clock()))
        running = asyncio.create_task(call.run())
        try:
            result = await running
        finally:
            if not running.done():
                running.cancel()
            states.put_nowait(_DONE)
            await recorder
            self.call = None
        if result.connected:
            self._s.metrics.call_ended(result.duration_s, result.media)
        return result

    async def _record_states(self, states: asyncio.Queue[str], call: DialedCall, dialed_at: float) -> None:
        """Write ringing/connected to the record in order, off the call's own task."""
        job = self.job
        assert job is not None  # noqa: S101 - set before any call is made
        while (state := await states.get()) != _DONE:
            if state not in ("ringing", "connected"):
                continue
            self.phase = state
            if self._lease_lost:
                continue
            try:
                if state == "ringing":
                    await asyncio.to_thread(self._s.registry.mark_ringing, job.call_id, self._s.worker_id)
                    continue
                await asyncio.to_thread(
                    self._s.registry.mark_connected, job.call_id, self._s.worker_id, call.sip_call_id or ""
                )
            except TransitionRejected:
                self._lose_lease()
                continue
            except Exception as exc:  # a transient AWS error must not take the call down; the lease retries
                self._s.logger.warning(
                    "could not record call state", extra={**self._keys(), "state": state, "error": repr(exc)}
                )
                continue
            self._connected_once = True
            self._s.metrics.call_connected(self._s.clock() - dialed_at)
            self._s.logger.info("call connected", extra={**self._keys(), "attempt": self.attempts})
            await self._settle_message(release=False)

    async def _heartbeat(self) -> None:
        job = self.job
        assert job is not None  # noqa: S101 - set before the claim
        while True:
            await self._s.sleep(self._s.heartbeat_s)
            try:
                desired = await asyncio.to_thread(
                    self._s.registry.heartbeat, job.call_id, self._s.worker_id, self._s.lease_s
                )
                if desired == "ended" and self._stop_reason is None:
                    record = await asyncio.to_thread(self._s.registry.get, job.call_id)
                    self.stop(_reason_from_record(record))
            except TransitionRejected:
                self._lose_lease()
                return
            except Exception as exc:  # transient: the next beat tries again well within the lease
                self._s.logger.warning("lease heartbeat failed", extra={**self._keys(), "error": repr(exc)})

    async def _keep_invisible(self) -> None:
        """Extend the message's invisibility at half its timeout until it is deleted or released."""
        visibility = self._s.queue.visibility_s
        while not self._message_settled:
            await self._s.sleep(visibility / 2)
            if self._message_settled:
                return
            try:
                await self._s.queue.set_visibility(self.message, visibility)
            except Exception as exc:  # a lapse only means another worker may see it; the claim decides
                self._s.logger.warning(
                    "could not extend message visibility",
                    extra={"message_id": self.message.message_id, "error": repr(exc)},
                )

    async def _finish(self, result: CallResult | None) -> None:
        job, registry, worker = self.job, self._s.registry, self._s.worker_id
        assert job is not None  # noqa: S101 - set before the claim
        reason = result.end_reason if result is not None else (self._stop_reason or EndReason.LOCAL_HANGUP)
        if self._stop_reason is EndReason.DRAINED and (reason.is_redialable or result is None):
            reason = EndReason.DRAINED  # drained between a drop and its re-dial: still ours to give back
        sip_status = result.sip_status if result is not None else None
        try:
            if self._lease_lost:
                pass  # another worker holds the record now: nothing of ours to write
            elif reason is EndReason.DRAINED:
                await asyncio.to_thread(registry.release_lease, job.call_id, worker)
            elif self._connected_once:
                stats = None if result is None else _stats(result)
                await asyncio.to_thread(
                    registry.mark_ended, job.call_id, worker, reason.value, sip_status, stats
                )
            else:
                await asyncio.to_thread(
                    registry.mark_failed, job.call_id, reason.value, worker_id=worker, sip_status=sip_status
                )
        except TransitionRejected as exc:
            self._s.logger.info("final call state not recorded", extra={**self._keys(), "why": str(exc)})
        except Exception as exc:  # the sweeper finishes records a worker could not
            self._s.logger.warning("could not record call end", extra={**self._keys(), "error": repr(exc)})
        if not self._connected_once and reason is not EndReason.DRAINED and not self._lease_lost:
            self._s.metrics.call_failed(reason.value)
        await self._settle_message(release=False)
        summary = result.summary() if result is not None else {"end_reason": reason.value, "connected": False}
        self._s.logger.info(
            "call finished",
            extra={**self._keys(), "attempts": self.attempts, "lease_lost": self._lease_lost, **summary},
        )

    def _lose_lease(self) -> None:
        if not self._lease_lost:
            self._lease_lost = True
            self._s.logger.warning("call record held by another worker; hanging up", extra=self._keys())
        self.stop(EndReason.LOCAL_HANGUP)

    async def _settle_message(self, *, release: bool) -> None:
        """Delete the message, or (``release``) make it visible again for another worker. Once."""
        if self._message_settled:
            return
        self._message_settled = True
        try:
            if release:
                await self._s.queue.set_visibility(self.message, 0)
            else:
                await self._s.queue.delete(self.message)
        except Exception as exc:  # the message reappears later; the claim refuses it then
            self._s.logger.warning(
                "could not settle dial message",
                extra={"message_id": self.message.message_id, "release": release, "error": repr(exc)},
            )

    async def _unless_stopped(self, work: Awaitable[Any]) -> bool:
        """Run ``work`` unless the job is stopped first; True when it completed."""
        task = asyncio.ensure_future(work)
        stopper = asyncio.create_task(self._stopped.wait())
        done, pending = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for waiting in pending:
            waiting.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return task in done and self._stop_reason is None

    def _keys(self) -> dict[str, Any]:
        keys: dict[str, Any] = {"message_id": self.message.message_id, "worker_id": self._s.worker_id}
        if self.job is not None:
            keys.update(call_id=self.job.call_id, attempt=self.job.attempt, host=self.job.target.host)
        return keys


def _reason_from_record(record: CallRecord | None) -> EndReason:
    reason = record.hangup_reason if record is not None else None
    try:
        return EndReason(reason) if reason else EndReason.LOCAL_HANGUP
    except ValueError:
        return EndReason.LOCAL_HANGUP


def _stats(result: CallResult) -> dict[str, float | int | str]:
    return {k: v for k, v in result.media.as_dict().items() if v is not None}


def _unplannable() -> CallResult:
    return CallResult(
        end_reason=EndReason.PROTOCOL_ERROR,
        connected=False,
        sip_status=None,
        detail="the job cannot be planned",
        sip_call_id=None,
        codec=None,
        suite=None,
        setup_latency_s=None,
        duration_s=0.0,
    )
