"""The sweeper (scheduled every minute): repairs what events and workers left behind.

- a worker's lease expired while the call is still wanted -> back to queued with attempt+1 and re-enqueued
  (``Redials``), or ``failed`` (attempts_exhausted) once ``MAX_DIAL_ATTEMPTS`` are used up;
- a call stuck in ``queued`` longer than ``QUEUED_STUCK_SECONDS`` (job lost, or a crash between claim and
  enqueue) -> attendee created if it has none, then re-enqueued the same way;
- a call nobody holds whose desired state is ended -> ended;
- the meeting ended, or no human has been present for the grace period -> hangup requested.

Calls are found through the ``state-index`` GSI, never a scan. Every change is conditional on the record being
unchanged since it was read (``version``), so a worker that comes back to life or a concurrent sweep wins
cleanly. One call's failure (e.g. the Meetings API throttling) is logged and does not stop the sweep.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Final

from chalicelib import observability as obs
from chalicelib.call_registry import CallRecord
from chalicelib.call_states import CallState
from chalicelib.control import ControlPlane, PlaneFactory, hang_up, provision_call
from chalicelib.errors import ControlPlaneError
from chalicelib.presence import enforce_humans_gone

__all__ = ["SweepReport", "redial_delay_s", "run_sweep", "sweep"]

_WORKER_HELD: Final[tuple[CallState, ...]] = ("dialing", "ringing", "connected", "ending")


@dataclass(slots=True)
class SweepReport:
    requeued: int = 0
    failed: int = 0
    finished: int = 0
    hangups: int = 0
    errors: int = 0


def redial_delay_s(attempt: int) -> int:
    """SQS delay before re-dial ``attempt`` (2, 3, ...): 5, 10, 20, 40 s, capped at 60 s."""
    return 0 if attempt <= 1 else min(60, 5 * 2 ** (attempt - 2))


def sweep(plane: ControlPlane) -> SweepReport:
    now = plane.clock()
    settings = plane.settings
    report = SweepReport()
    wanted: list[CallRecord] = []
    for call in plane.calls.calls_in_state("queued"):
        if call.desired == "ended":
            report.finished += plane.calls.finish_unchanged(call, "ended", call.hangup_reason or "hangup")
        elif call.updated_epoch < now - settings.queued_stuck_s:
            _guarded(report, plane, call, "stuck_queued")
        else:
            wanted.append(call)
    for state in _WORKER_HELD:
        for call in plane.calls.calls_in_state(state):
            lease = call.lease_expires_at
            if lease is not None and lease >= now - settings.lease_expired_grace_s:
                if call.desired == "connected":
                    wanted.append(call)
            elif call.desired == "ended" or state == "ending":
                reason = call.hangup_reason or "worker_lost"
                report.finished += plane.calls.finish_unchanged(call, "ended", reason)
            else:
                _guarded(report, plane, call, "lease_expired")
    report.hangups += _apply_meeting_rules(plane, wanted, now)
    obs.count(obs.SWEEPER_RUNS)
    obs.logger.info("sweep done", extra={"report": asdict(report)})
    return report


def run_sweep(factory: PlaneFactory, environ: Mapping[str, str]) -> SweepReport:
    """Entry point for the schedule: build the plane now, sweep, always flush metrics."""
    obs.start_invocation(None)
    try:
        return sweep(factory(environ))
    finally:
        obs.flush()


def _guarded(report: SweepReport, plane: ControlPlane, call: CallRecord, reason: str) -> None:
    try:
        outcome = _redial(plane, call, reason)
    except ControlPlaneError as exc:
        report.errors += 1
        obs.logger.warning(
            "sweeper could not repair call; next run retries",
            extra={"call_id": call.call_id, "error": type(exc).__name__},
        )
        return
    if outcome == "requeued":
        report.requeued += 1
    elif outcome == "failed":
        report.failed += 1


def _redial(plane: ControlPlane, call: CallRecord, reason: str) -> str:
    if call.attempts >= plane.settings.max_dial_attempts:
        if plane.calls.finish_unchanged(call, "failed", "attempts_exhausted"):
            obs.count(obs.CALLS_FAILED, reason="attempts_exhausted")
            obs.logger.warning("call failed: dial attempts exhausted", extra={"call_id": call.call_id})
            return "failed"
        return "changed"
    job = call.dial_request()
    if job is None:
        # Crashed between claim and CreateAttendee: finish that claim (attempt stays 1).
        outcome = provision_call(plane, call, release_on_retryable=False)
        return {"enqueued": "requeued", "lost_claim": "changed"}.get(outcome, "failed")
    attempt = call.attempts + 1
    job = job.model_copy(
        update={"attempt": attempt, "requested_at": datetime.fromtimestamp(plane.clock(), UTC)}
    )
    if plane.calls.requeue(call, job) is None:
        return "changed"
    plane.queue.enqueue(job, delay_s=redial_delay_s(attempt))
    obs.count(obs.JOBS_ENQUEUED)
    if reason == "lease_expired":
        obs.count(obs.REDIALS)
    obs.logger.info("call re-enqueued", extra={"call_id": call.call_id, "attempt": attempt, "reason": reason})
    return "requeued"


def _apply_meeting_rules(plane: ControlPlane, wanted: list[CallRecord], now: float) -> int:
    by_meeting: dict[str, list[CallRecord]] = defaultdict(list)
    for call in wanted:
        by_meeting[call.meeting_id].append(call)
    hangups = 0
    for meeting_id, calls in by_meeting.items():
        meeting = plane.meeting_records.get(meeting_id)
        if meeting is not None and meeting.ended:
            hangups += sum(hang_up(plane, call, "meeting_ended") for call in calls)
        else:
            hangups += enforce_humans_gone(plane, meeting, calls, now)
    return hangups
