"""Chime meeting lifecycle events: ``detail`` builders and the EventBridge envelope.

Detail fields follow the developer guide's event table: every event carries ``version``, ``eventType``,
``timestamp`` (epoch milliseconds), ``meetingId`` and ``mediaRegion``; meeting events add
``externalMeetingId``; attendee events add ``attendeeId`` and ``externalUserId``; join/leave/drop events add
``networkType``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "ATTENDEE_ADDED",
    "ATTENDEE_DELETED",
    "ATTENDEE_DROPPED",
    "ATTENDEE_JOINED",
    "ATTENDEE_LEFT",
    "DETAIL_TYPE",
    "EVENT_SOURCE",
    "MEETING_ENDED",
    "MEETING_STARTED",
    "MeetingEventListener",
    "attendee_detail",
    "meeting_detail",
    "to_eventbridge",
]

EVENT_SOURCE: Final = "aws.chime"
DETAIL_TYPE: Final = "Chime Meeting State Change"

MEETING_STARTED: Final = "chime:MeetingStarted"
MEETING_ENDED: Final = "chime:MeetingEnded"
ATTENDEE_ADDED: Final = "chime:AttendeeAdded"
ATTENDEE_DELETED: Final = "chime:AttendeeDeleted"
ATTENDEE_JOINED: Final = "chime:AttendeeJoined"
ATTENDEE_LEFT: Final = "chime:AttendeeLeft"
ATTENDEE_DROPPED: Final = "chime:AttendeeDropped"

MeetingEventListener = Callable[[str, dict[str, Any]], None]
"""Called as ``listener(event_type, detail)`` after the state change, outside the store's lock."""


def meeting_detail(
    event_type: str, *, timestamp_ms: int, meeting_id: str, external_meeting_id: str, media_region: str
) -> dict[str, Any]:
    """``detail`` of chime:MeetingStarted / chime:MeetingEnded."""
    return {
        "version": "0",
        "eventType": event_type,
        "timestamp": timestamp_ms,
        "meetingId": meeting_id,
        "externalMeetingId": external_meeting_id,
        "mediaRegion": media_region,
    }


def attendee_detail(
    event_type: str,
    *,
    timestamp_ms: int,
    meeting_id: str,
    attendee_id: str,
    external_user_id: str,
    media_region: str,
    network_type: str | None = None,
) -> dict[str, Any]:
    """``detail`` of the chime:Attendee* events; ``network_type`` only for Joined/Left/Dropped."""
    detail: dict[str, Any] = {
        "version": "0",
        "eventType": event_type,
        "timestamp": timestamp_ms,
        "meetingId": meeting_id,
        "attendeeId": attendee_id,
        "externalUserId": external_user_id,
    }
    if network_type is not None:
        detail["networkType"] = network_type
    detail["mediaRegion"] = media_region
    return detail


def to_eventbridge(
    detail: dict[str, Any], region: str, account: str, *, event_id: str | None = None
) -> dict[str, Any]:
    """Wrap a ``detail`` in the EventBridge envelope the default bus delivers.

    ``time`` is the detail's timestamp in ISO-8601 UTC with second precision, as EventBridge writes it.
    """
    moment = datetime.fromtimestamp(int(detail["timestamp"]) / 1000, tz=UTC)
    return {
        "version": "0",
        "id": event_id if event_id is not None else str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": EVENT_SOURCE,
        "account": account,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": dict(detail),
    }
