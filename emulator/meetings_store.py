"""In-memory Chime SDK meetings: the API's semantics, join tokens, simulated clients and lifecycle events.

The HTTP layer (``meetings_api``) only moves bytes; everything the service decides lives here, so other
local stand-ins can use the same store in-process (the Voice Connector stand-in checks join tokens with
``is_token_valid``). Requests and responses are the wire shapes (``{"Meeting": {...}}``).

Emulator choices where the real service's behaviour is not documented (UNCONFIRMED):
- CreateAttendee with an ExternalUserId already present (case-insensitively) in the meeting returns the
  existing attendee and its token, without a second chime:AttendeeAdded.
- CreateMeeting with a ClientRequestToken seen before returns the same meeting while it is active
  (ConflictException if ExternalMeetingId or MediaRegion differ); once it has ended the token is free again.
- DeleteAttendee of a joined attendee emits chime:AttendeeDeleted, then chime:AttendeeLeft.
- DeleteMeeting and auto-end emit only chime:MeetingEnded (no per-attendee events).
- BatchCreateAttendee reports per-item failures with ErrorCode ``BadRequest`` / ``LimitExceeded``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

from emulator import meetings_events as ev
from emulator.meetings_records import (
    MAX_ATTENDEES_PER_MEETING,
    AttendeeRecord,
    MeetingRecord,
    decode_page_token,
    encode_page_token,
    new_join_token,
    optional_meeting_members,
)
from emulator.meetings_validation import (
    MeetingsApiError,
    bad_request,
    check_attendee_capabilities,
    check_client_request_token,
    check_external_meeting_id,
    check_external_user_id,
    check_guid,
    check_media_region,
    parse_max_results,
    require_object,
)

__all__ = ["MAX_ACTIVE_MEETINGS", "MeetingsStore"]

MAX_ACTIVE_MEETINGS: Final = 250
MEETING_MAX_DURATION_MS: Final = 24 * 3600 * 1000  # DG: a meeting ends after 24 hours
MEETING_IDLE_END_MS: Final = 5 * 60 * 1000  # DG: ... or after five continuous minutes with nobody connected
_DEFAULT_CAPABILITIES: Final = {"Audio": "SendReceive", "Video": "SendReceive", "Content": "SendReceive"}

_log = logging.getLogger(__name__)

_Events = list[tuple[str, dict[str, Any]]]


class MeetingsStore:
    """Thread-safe meetings, attendees and join tokens, with lifecycle listeners.

    ``clock`` returns epoch seconds (event timestamps are its value in milliseconds); ``urandom`` feeds ids
    and join tokens. Listeners run after the change, outside the lock, so they may call back into the store.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        urandom: Callable[[int], bytes] = os.urandom,
        region: str = "us-east-1",
        account: str = "111122223333",
        max_active_meetings: int = MAX_ACTIVE_MEETINGS,
    ) -> None:
        self._clock = clock
        self._urandom = urandom
        self.region = region
        self.account = account
        self._max_active_meetings = max_active_meetings
        self._lock = threading.RLock()
        self._meetings: dict[str, MeetingRecord] = {}
        self._by_request_token: dict[str, str] = {}
        self._tokens: dict[str, tuple[str, str]] = {}
        self._listeners: list[ev.MeetingEventListener] = []

    # -- listeners ---------------------------------------------------------------------------------------

    def add_listener(self, listener: ev.MeetingEventListener) -> None:
        """Call ``listener(event_type, detail)`` for every lifecycle event from now on."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: ev.MeetingEventListener) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def _dispatch(self, events: _Events) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for event_type, detail in events:
            for listener in listeners:
                try:
                    listener(event_type, dict(detail))
                except Exception:
                    # A broken listener must not turn a successful API call into an error.
                    _log.exception("meeting event listener failed on %s", event_type)

    # -- helpers -----------------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _new_id(self) -> str:
        return str(uuid.UUID(bytes=self._urandom(16), version=4))

    def _meeting(self, meeting_id: str) -> MeetingRecord:
        check_guid(meeting_id, "meetingId")
        meeting = self._meetings.get(meeting_id.lower())
        if meeting is None:
            raise MeetingsApiError("NotFoundException", f"Meeting {meeting_id} not found.")
        if meeting.ended_ms is not None:
            raise MeetingsApiError("NotFoundException", "The meeting has ended.")
        return meeting

    def _attendee(self, meeting: MeetingRecord, attendee_id: str) -> AttendeeRecord:
        check_guid(attendee_id, "attendeeId")
        attendee = meeting.attendees.get(attendee_id.lower())
        if attendee is None or attendee.deleted:
            raise MeetingsApiError("NotFoundException", f"Attendee {attendee_id} not found.")
        return attendee

    def _end(self, meeting: MeetingRecord, events: _Events) -> None:
        meeting.ended_ms = self._now_ms()
        for attendee in meeting.attendees.values():
            self._tokens.pop(attendee.join_token, None)
        self._by_request_token.pop(meeting.client_request_token, None)
        events.append(meeting.meeting_event(ev.MEETING_ENDED, meeting.ended_ms))

    # -- meetings ----------------------------------------------------------------------------------------

    def create_meeting(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """CreateMeeting: ``{"Meeting": ...}``; idempotent on ClientRequestToken while it is active."""
        token = check_client_request_token(request.get("ClientRequestToken"))
        region = check_media_region(request.get("MediaRegion"))
        external_meeting_id = check_external_meeting_id(request.get("ExternalMeetingId"))
        extra = optional_meeting_members(request)
        max_attendees = (
            extra.get("MeetingFeatures", {}).get("Attendee", {}).get("MaxCount", MAX_ATTENDEES_PER_MEETING)
        )
        events: _Events = []
        with self._lock:
            existing_id = self._by_request_token.get(token)
            if existing_id is not None:
                existing = self._meetings[existing_id]
                if (existing.external_meeting_id, existing.media_region) != (external_meeting_id, region):
                    raise MeetingsApiError(
                        "ConflictException", "ClientRequestToken was already used with other parameters."
                    )
                return {"Meeting": existing.wire()}
            active = sum(1 for meeting in self._meetings.values() if meeting.ended_ms is None)
            if active >= self._max_active_meetings:
                raise MeetingsApiError(
                    "LimitExceededException", "The maximum number of active meetings was reached."
                )
            meeting_id = self._new_id()
            now = self._now_ms()
            meeting = MeetingRecord(
                meeting_id=meeting_id,
                external_meeting_id=external_meeting_id,
                media_region=region,
                client_request_token=token,
                created_ms=now,
                max_attendees=max_attendees,
                arn=f"arn:aws:chime:{self.region}:{self.account}:meeting/{meeting_id}",
                extra=extra,
                idle_since_ms=now,
            )
            self._meetings[meeting_id] = meeting
            self._by_request_token[token] = meeting_id
            events.append(meeting.meeting_event(ev.MEETING_STARTED, now))
            response = {"Meeting": meeting.wire()}
        self._dispatch(events)
        return response

    def get_meeting(self, meeting_id: str) -> dict[str, Any]:
        """GetMeeting: ``{"Meeting": ...}``; NotFoundException once the meeting has ended."""
        with self._lock:
            return {"Meeting": self._meeting(meeting_id).wire()}

    def delete_meeting(self, meeting_id: str) -> None:
        """DeleteMeeting: ends the meeting, every join token dies, chime:MeetingEnded is emitted."""
        self.end_meeting(meeting_id)

    def end_meeting(self, meeting_id: str) -> None:
        """End the meeting as the service does on DeleteMeeting or auto-end."""
        events: _Events = []
        with self._lock:
            self._end(self._meeting(meeting_id), events)
        self._dispatch(events)

    def expire_meetings(self) -> list[str]:
        """Apply the auto-end rules at the clock's time: 24 hours old, or 5 minutes with nobody connected."""
        events: _Events = []
        ended: list[str] = []
        with self._lock:
            now = self._now_ms()
            for meeting in self._meetings.values():
                if meeting.ended_ms is not None:
                    continue
                too_old = now - meeting.created_ms >= MEETING_MAX_DURATION_MS
                idle = (
                    meeting.idle_since_ms is not None and now - meeting.idle_since_ms >= MEETING_IDLE_END_MS
                )
                if too_old or idle:
                    self._end(meeting, events)
                    ended.append(meeting.meeting_id)
        self._dispatch(events)
        return ended

    # -- attendees ---------------------------------------------------------------------------------------

    def _add_attendee(
        self, meeting: MeetingRecord, item: Mapping[str, Any], member: str, events: _Events
    ) -> AttendeeRecord:
        external_user_id = check_external_user_id(item.get("ExternalUserId"), f"{member}externalUserId")
        assert external_user_id is not None  # noqa: S101 - required by default; narrows the type for mypy
        capabilities = check_attendee_capabilities(item.get("Capabilities"), f"{member}capabilities")
        existing_id = meeting.by_external_user_id.get(external_user_id.casefold())
        if existing_id is not None:
            return meeting.attendees[existing_id]
        if len(meeting.live_attendees()) >= meeting.max_attendees:
            raise MeetingsApiError(
                "LimitExceededException", "The meeting has reached its maximum number of attendees."
            )
        attendee = AttendeeRecord(
            attendee_id=self._new_id(),
            external_user_id=external_user_id,
            join_token=new_join_token(self._urandom),
            capabilities=capabilities or dict(_DEFAULT_CAPABILITIES),
            seq=meeting.next_seq,
        )
        meeting.next_seq += 1
        meeting.attendees[attendee.attendee_id] = attendee
        meeting.by_external_user_id[external_user_id.casefold()] = attendee.attendee_id
        self._tokens[attendee.join_token] = (meeting.meeting_id, attendee.attendee_id)
        events.append(meeting.attendee_event(ev.ATTENDEE_ADDED, attendee, self._now_ms()))
        return attendee

    def create_attendee(self, meeting_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """CreateAttendee: ``{"Attendee": ...}`` with a fresh JoinToken (or the existing attendee)."""
        events: _Events = []
        with self._lock:
            meeting = self._meeting(meeting_id)
            attendee = self._add_attendee(meeting, request, "", events)
            response = {"Attendee": attendee.wire()}
        self._dispatch(events)
        return response

    def batch_create_attendee(self, meeting_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """BatchCreateAttendee: 1..100 items; per-item failures go to ``Errors``."""
        items = request.get("Attendees")
        if not isinstance(items, list) or not 1 <= len(items) <= 100:
            raise bad_request("attendees", "Member must have length between 1 and 100")
        events: _Events = []
        created: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        with self._lock:
            meeting = self._meeting(meeting_id)
            for index, raw in enumerate(items):
                item = require_object(raw, f"attendees.{index + 1}")
                try:
                    created.append(
                        self._add_attendee(meeting, item, f"attendees.{index + 1}.member.", events).wire()
                    )
                except MeetingsApiError as error:
                    errors.append(
                        {
                            "ExternalUserId": str(item.get("ExternalUserId", "")),
                            "ErrorCode": error.code.removesuffix("Exception"),
                            "ErrorMessage": error.message,
                        }
                    )
        self._dispatch(events)
        return {"Attendees": created, "Errors": errors}

    def get_attendee(self, meeting_id: str, attendee_id: str) -> dict[str, Any]:
        """GetAttendee: ``{"Attendee": ...}``."""
        with self._lock:
            meeting = self._meeting(meeting_id)
            return {"Attendee": self._attendee(meeting, attendee_id).wire()}

    def list_attendees(
        self, meeting_id: str, next_token: str | None, max_results: str | None
    ) -> dict[str, Any]:
        """ListAttendees: pages in creation order; ``NextToken`` is present only when more remain."""
        limit = parse_max_results(max_results)
        with self._lock:
            meeting = self._meeting(meeting_id)
            after = decode_page_token(next_token, meeting.meeting_id)
            remaining = [attendee for attendee in meeting.live_attendees() if attendee.seq > after]
            page = remaining[:limit]
            response: dict[str, Any] = {"Attendees": [attendee.wire() for attendee in page]}
            if len(remaining) > limit:
                response["NextToken"] = encode_page_token(meeting.meeting_id, page[-1].seq)
            return response

    def delete_attendee(self, meeting_id: str, attendee_id: str) -> None:
        """DeleteAttendee: the token dies; chime:AttendeeDeleted (then AttendeeLeft if it was connected)."""
        events: _Events = []
        with self._lock:
            meeting = self._meeting(meeting_id)
            attendee = self._attendee(meeting, attendee_id)
            attendee.deleted = True
            self._tokens.pop(attendee.join_token, None)
            meeting.by_external_user_id.pop(attendee.external_user_id.casefold(), None)
            events.append(meeting.attendee_event(ev.ATTENDEE_DELETED, attendee, self._now_ms()))
            if attendee.network_type is not None:
                self._disconnect(meeting, attendee, ev.ATTENDEE_LEFT, events)
        self._dispatch(events)

    # -- join tokens and simulated clients ---------------------------------------------------------------

    def is_token_valid(self, token: str) -> tuple[str, str] | None:
        """``(meeting_id, attendee_id)`` while the attendee exists in an active meeting, else ``None``."""
        with self._lock:
            return self._tokens.get(token)

    def join_attendee(self, meeting_id: str, attendee_id: str, network_type: str = "Voip") -> None:
        """A client connects with this attendee's token: chime:AttendeeJoined (once while connected)."""
        events: _Events = []
        with self._lock:
            meeting = self._meeting(meeting_id)
            attendee = self._attendee(meeting, attendee_id)
            if attendee.network_type is None:
                attendee.network_type = network_type
                meeting.idle_since_ms = None
                events.append(
                    meeting.attendee_event(ev.ATTENDEE_JOINED, attendee, self._now_ms(), network_type)
                )
        self._dispatch(events)

    def leave_attendee(self, meeting_id: str, attendee_id: str) -> None:
        """The client hangs up cleanly: chime:AttendeeLeft."""
        self._client_gone(meeting_id, attendee_id, ev.ATTENDEE_LEFT)

    def drop_attendee(self, meeting_id: str, attendee_id: str) -> None:
        """The client's connection is lost: chime:AttendeeDropped."""
        self._client_gone(meeting_id, attendee_id, ev.ATTENDEE_DROPPED)

    def _client_gone(self, meeting_id: str, attendee_id: str, event_type: str) -> None:
        events: _Events = []
        with self._lock:
            meeting = self._meeting(meeting_id)
            attendee = self._attendee(meeting, attendee_id)
            if attendee.network_type is not None:
                self._disconnect(meeting, attendee, event_type, events)
        self._dispatch(events)

    def _disconnect(
        self, meeting: MeetingRecord, attendee: AttendeeRecord, event_type: str, events: _Events
    ) -> None:
        events.append(meeting.attendee_event(event_type, attendee, self._now_ms(), attendee.network_type))
        attendee.network_type = None
        if all(other.network_type is None for other in meeting.attendees.values()):
            meeting.idle_since_ms = self._now_ms()

    # -- inspection --------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Meetings and attendees for debugging and tests; join tokens are never included."""
        with self._lock:
            meetings = [meeting.summary() for meeting in self._meetings.values()]
            return {"Meetings": meetings, "ValidTokens": len(self._tokens)}

    def reset(self) -> None:
        """Forget every meeting, attendee and token (listeners stay registered); emits nothing."""
        with self._lock:
            self._meetings.clear()
            self._by_request_token.clear()
            self._tokens.clear()
