"""Attendee events: who of the humans is in the meeting, what Chime says about our own attendee, and the
humans-gone rule (hang up when no human has been present for the target's grace period).

The rule is checked here on every human departure (it fires at once only with a zero grace period) and by the
sweeper every minute, which is what notices a grace period running out without any further event. Humans who
come back before the grace period ends cancel nothing: nothing was changed yet.
"""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib import observability as obs
from chalicelib.call_registry import CallRecord
from chalicelib.call_states import TERMINAL_STATES, call_id_for
from chalicelib.control import ControlPlane, hang_up
from chalicelib.dial_plan import is_our_attendee, target_name_of
from chalicelib.events import (
    ATTENDEE_ADDED,
    ATTENDEE_ARRIVAL_EVENTS,
    ATTENDEE_DELETED,
    ATTENDEE_DEPARTURE_EVENTS,
    ATTENDEE_DROPPED,
    ATTENDEE_JOINED,
    ATTENDEE_LEFT,
    MeetingEvent,
)
from chalicelib.meeting_registry import MeetingRecord

__all__ = [
    "HUMANS_GONE",
    "OUR_ATTENDEE_STATUS",
    "enforce_humans_gone",
    "handle_attendee_event",
    "humans_gone_since",
]

HUMANS_GONE = "humans_gone"

#: What we record on the call when Chime reports on our own attendee.
OUR_ATTENDEE_STATUS = {
    ATTENDEE_ADDED: "added",
    ATTENDEE_JOINED: "joined",
    ATTENDEE_LEFT: "left",
    ATTENDEE_DROPPED: "dropped",
    ATTENDEE_DELETED: "deleted",
}


def handle_attendee_event(plane: ControlPlane, event: MeetingEvent) -> None:
    if event.attendee_id is None:
        return
    if is_our_attendee(event.external_user_id):
        _record_our_attendee(plane, event, event.attendee_id)
        return
    if event.event_type in ATTENDEE_ARRIVAL_EVENTS:
        present = True
    elif event.event_type in ATTENDEE_DEPARTURE_EVENTS:
        present = False
    else:
        return  # Added / video / content: not a change of who is in the meeting
    update = plane.meeting_records.record_presence(
        event.meeting_id, event.attendee_id, present, event.timestamp_ms
    )
    if not update.applied:
        obs.logger.info("older presence event ignored")
    if update.meeting.present_humans:
        return
    enforce_humans_gone(plane, update.meeting, plane.calls.calls_for_meeting(event.meeting_id), plane.clock())


def _record_our_attendee(plane: ControlPlane, event: MeetingEvent, attendee_id: str) -> None:
    status = OUR_ATTENDEE_STATUS.get(event.event_type)
    target_name = target_name_of(event.external_user_id)
    if status is None or target_name is None:
        return
    call_id = call_id_for(event.meeting_id, target_name)
    if not plane.calls.record_attendee_status(call_id, attendee_id, status, event.timestamp_ms):
        obs.logger.info("our attendee event is older than the recorded one, or for another attendee")
        return
    obs.logger.info("our attendee reported", extra={"call_id": call_id, "status": status})
    if event.event_type == ATTENDEE_DELETED:
        # Its join token is dead: the call cannot continue or be re-dialed.
        call = plane.calls.get(call_id)
        if call is not None and call.state not in TERMINAL_STATES:
            hang_up(plane, call, "attendee_deleted")


def humans_gone_since(meeting: MeetingRecord | None, call: CallRecord) -> float | None:
    """Epoch seconds since when no human has been present for ``call``, or None if one is present now.

    If no human was ever seen, the clock starts when the call was created: a participant alone in a meeting
    would otherwise keep it (and its bill) alive.
    """
    if meeting is not None and meeting.present_humans:
        return None
    if meeting is not None and meeting.last_human_left_ms is not None:
        return max(meeting.last_human_left_ms / 1000.0, call.created_epoch)
    return call.created_epoch


def enforce_humans_gone(
    plane: ControlPlane, meeting: MeetingRecord | None, calls: Iterable[CallRecord], now: float
) -> int:
    """Request hangup (reason humans_gone) of every wanted call whose grace period has run out."""
    hangups = 0
    for call in calls:
        if call.state in TERMINAL_STATES or call.desired != "connected":
            continue
        since = humans_gone_since(meeting, call)
        if since is not None and now - since >= call.grace_s:
            hangups += hang_up(plane, call, HUMANS_GONE)
    return hangups
