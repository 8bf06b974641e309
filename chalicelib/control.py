"""Orchestration of the meeting events: MeetingStarted -> claim, attendee, job; MeetingEnded -> hang up.

Handlers take a ``ControlPlane`` (settings and injected collaborators) and a parsed ``MeetingEvent``;
``run_event`` / ``run_sweep`` are the entry points app.py calls: they build the plane from the environment at
call time, parse, reject malformed input (logged and counted, no exception: a retry could not fix it), and
flush metrics. Throttling that outlasts the retries, SQS failures and configuration errors propagate, so
EventBridge delivers the event again.

Exactly one attendee and one job per (meeting, target): the call record is claimed (conditional put) BEFORE
CreateAttendee, only the claim's winner creates the attendee, and the attendee and job are stored under the
same claim. A crash in between leaves a ``queued`` call that the sweeper repairs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from chalicelib import clients
from chalicelib import observability as obs
from chalicelib.call_registry import CallRecord, CallRegistry
from chalicelib.call_states import TERMINAL_STATES, call_id_for
from chalicelib.contract import DialRequest, DialTarget
from chalicelib.dial_plan import PlanTarget, external_user_id_for
from chalicelib.errors import (
    AttendeeLimitReached,
    InvalidEvent,
    MeetingGone,
    MeetingsApiError,
)
from chalicelib.events import MeetingEvent, parse_meeting_event
from chalicelib.job_queue import JobQueue, SqsJobQueue
from chalicelib.meeting_registry import MeetingRegistry
from chalicelib.meetings import CreatedAttendee, MeetingsClient
from chalicelib.settings import Settings
from chalicelib.wire_logging import quiet_wire_loggers

__all__ = [
    "ControlPlane",
    "EventHandler",
    "MeetingsApi",
    "PlaneFactory",
    "build_plane",
    "handle_meeting_ended",
    "handle_meeting_started",
    "hang_up",
    "provision_call",
    "run_event",
]


class MeetingsApi(Protocol):
    """What the control plane needs from Chime SDK Meetings (``meetings.MeetingsClient`` implements it)."""

    def create_attendee(self, meeting_id: str, external_user_id: str) -> CreatedAttendee: ...

    def delete_attendee(self, meeting_id: str, attendee_id: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class ControlPlane:
    settings: Settings
    meetings: MeetingsApi
    calls: CallRegistry
    meeting_records: MeetingRegistry
    queue: JobQueue
    clock: Callable[[], float]


PlaneFactory = Callable[[Mapping[str, str]], ControlPlane]
EventHandler = Callable[[ControlPlane, MeetingEvent], object]


def build_plane(
    environ: Mapping[str, str],
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> ControlPlane:
    """The production wiring: settings read now, boto3 clients created lazily and cached (clients.py)."""
    quiet_wire_loggers()
    settings = Settings.from_env(environ)
    ttl_s = settings.record_ttl_days * 86_400.0
    dynamodb = clients.get_dynamodb_client()
    return ControlPlane(
        settings=settings,
        meetings=MeetingsClient(clients.get_meetings_client(), sleep=sleep),
        calls=CallRegistry(dynamodb, settings.calls_table, clock=clock, record_ttl_s=ttl_s),
        meeting_records=MeetingRegistry(dynamodb, settings.calls_table, clock=clock, record_ttl_s=ttl_s),
        queue=SqsJobQueue(clients.get_sqs_client(), settings.dial_queue_url),
        clock=clock,
    )


def run_event(
    raw: Mapping[str, Any], handler: EventHandler, factory: PlaneFactory, environ: Mapping[str, str]
) -> None:
    """Parse, reject (log + EventsRejected) or handle one EventBridge event; always flush metrics."""
    obs.start_invocation(_event_id_of(raw))
    try:
        try:
            event = parse_meeting_event(raw)
        except InvalidEvent as exc:
            obs.log_rejection(exc.reason, exc.detail)
            return
        obs.start_invocation(event.event_id, **event.log_keys())
        obs.count(obs.EVENTS_RECEIVED)
        handler(factory(environ), event)
    except MeetingsApiError as exc:
        obs.logger.error("meetings API failure; the event will be delivered again", extra={"code": exc.code})
        raise
    finally:
        obs.flush()


def _event_id_of(raw: Mapping[str, Any]) -> str | None:
    event_id = raw.get("id") if isinstance(raw, Mapping) else None
    return event_id if isinstance(event_id, str) and 0 < len(event_id) <= 128 else None


# -- MeetingStarted ------------------------------------------------------------------------------------------


def handle_meeting_started(plane: ControlPlane, event: MeetingEvent) -> list[str]:
    """Claim, provision and enqueue one call per target of the first matching rule; returns outcomes."""
    plan = plane.settings.require_dial_plan()
    meeting = plane.meeting_records.get(event.meeting_id)
    if meeting is not None and meeting.ended:
        obs.logger.info("meeting already ended; nothing to dial")
        obs.count(obs.MEETINGS_SKIPPED)
        return ["meeting_ended"]
    rule = plan.match(event.external_meeting_id, event.media_region)
    if rule is None:
        obs.logger.info("no dial-plan rule matches this meeting; skipped")
        obs.count(obs.MEETINGS_SKIPPED)
        return []
    return [_start_target(plane, event, target) for target in rule.targets]


def _start_target(plane: ControlPlane, event: MeetingEvent, target: PlanTarget) -> str:
    claim = plane.calls.claim(
        event.meeting_id,
        target.dial_target,
        grace_s=target.humans_gone_grace_s,
        event_id=event.event_id,
        media_region=event.media_region,
        external_meeting_id=event.external_meeting_id,
    )
    call_id = call_id_for(event.meeting_id, target.name)
    if claim.claim_id is None:
        obs.logger.info(
            "call already claimed; duplicate event", extra={"call_id": call_id, "why": claim.refusal}
        )
        return claim.refusal or "exists"
    record = plane.calls.get(call_id)
    if record is None:  # released by a concurrent failure path: the retried event will claim again
        return "released"
    return provision_call(plane, record, release_on_retryable=True)


def provision_call(plane: ControlPlane, call: CallRecord, *, release_on_retryable: bool) -> str:
    """CreateAttendee for a claimed call without one, store attendee + job under the claim, enqueue.

    Used by MeetingStarted and by the sweeper for a claim whose first attempt crashed midway.
    """
    target = call.dial_target()
    try:
        created = plane.meetings.create_attendee(
            call.meeting_id, external_user_id_for(target.name, call.meeting_id)
        )
    except (MeetingGone, AttendeeLimitReached) as exc:
        reason = "meeting_gone" if isinstance(exc, MeetingGone) else "attendee_limit"
        obs.count(obs.CREATE_ATTENDEE_ERRORS, code=exc.code)
        obs.count(obs.CALLS_FAILED, reason=reason)
        obs.logger.warning("call cannot be placed", extra={"call_id": call.call_id, "reason": reason})
        plane.calls.mark_failed(call.call_id, reason)
        return reason
    except MeetingsApiError as exc:
        obs.count(obs.CREATE_ATTENDEE_ERRORS, code=exc.code)
        if release_on_retryable:
            plane.calls.release_claim(call.call_id, call.claim_id)
        raise
    job = _dial_request(plane, call, target, created)
    stored = plane.calls.attach_attendee(
        call.call_id,
        call.claim_id,
        attendee_id=created.attendee_id,
        external_user_id=created.external_user_id,
        job=job,
    )
    if stored is None:  # someone else completed this claim meanwhile: ours would be a second participant
        plane.meetings.delete_attendee(call.meeting_id, created.attendee_id)
        return "lost_claim"
    obs.count(obs.ATTENDEES_CREATED)
    plane.queue.enqueue(job)
    obs.count(obs.JOBS_ENQUEUED)
    obs.log_dial_request("dial job enqueued", job)
    return "enqueued"


def _dial_request(
    plane: ControlPlane, call: CallRecord, target: DialTarget, created: CreatedAttendee
) -> DialRequest:
    return DialRequest(
        call_id=call.call_id,
        attempt=call.attempts,
        meeting_id=call.meeting_id,
        external_meeting_id=call.external_meeting_id,
        media_region=call.media_region,
        attendee_id=created.attendee_id,
        join_token=created.join_token,
        target=target,
        requested_at=datetime.fromtimestamp(plane.clock(), UTC),
        event_id=call.event_id,
    )


# -- MeetingEnded --------------------------------------------------------------------------------------------


def handle_meeting_ended(plane: ControlPlane, event: MeetingEvent) -> int:
    """Remember the end, ask every call of the meeting to hang up, delete our attendees. Returns hangups."""
    plane.meeting_records.mark_ended(event.meeting_id, event.timestamp_ms, event.event_id)
    hangups = 0
    for call in plane.calls.calls_for_meeting(event.meeting_id):
        if call.state in TERMINAL_STATES:
            continue
        hangups += hang_up(plane, call, "meeting_ended")
        if call.attendee_id is not None:
            plane.meetings.delete_attendee(call.meeting_id, call.attendee_id)  # False (NotFound) is fine
    return hangups


def hang_up(plane: ControlPlane, call: CallRecord, reason: str) -> int:
    """desired := ended; a call no worker holds yet (queued) is ended right away. Returns 1 if requested."""
    updated = plane.calls.request_hangup(call.call_id, reason)
    if updated is None:
        return 0
    obs.count(obs.HANGUPS_REQUESTED, reason=reason)
    obs.logger.info("hangup requested", extra={"call_id": call.call_id, "reason": reason})
    if updated.state == "queued":
        # Workers refuse calls whose desired state is ended; finish it so it does not wait for the sweeper.
        plane.calls.finish_unchanged(updated, "ended", reason)
    return 1
