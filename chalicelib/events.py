"""Chime SDK meeting events as they arrive from EventBridge, validated into one plain ``MeetingEvent``.

The envelope is parsed here instead of with Powertools' ``EventBridgeModel``: that model rejects the integer
``version`` that ``chalice.test`` generates and the events without ``account`` that moto's EventBridge->SQS
delivery produces, and both are legitimate inputs.

``externalMeetingId`` and ``externalUserId`` are ``sensitive`` in the service model, so no error raised here
ever contains an input value, and ``MeetingEvent``'s repr leaves them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Final, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from chalicelib.dial_plan import format_error_location
from chalicelib.errors import InvalidEvent

__all__ = [
    "ATTENDEE_ADDED",
    "ATTENDEE_ARRIVAL_EVENTS",
    "ATTENDEE_AUTHORIZED",
    "ATTENDEE_CONTENT_DROPPED",
    "ATTENDEE_CONTENT_JOINED",
    "ATTENDEE_CONTENT_LEFT",
    "ATTENDEE_CONTENT_VIDEO_STARTED",
    "ATTENDEE_CONTENT_VIDEO_STOPPED",
    "ATTENDEE_DELETED",
    "ATTENDEE_DEPARTURE_EVENTS",
    "ATTENDEE_DROPPED",
    "ATTENDEE_EVENTS",
    "ATTENDEE_EVENTS_PATTERN",
    "ATTENDEE_JOINED",
    "ATTENDEE_LEFT",
    "ATTENDEE_PRESENCE_EVENTS",
    "ATTENDEE_VIDEO_STARTED",
    "ATTENDEE_VIDEO_STOPPED",
    "CHIME_SOURCE",
    "KNOWN_EVENT_TYPES",
    "MEETING_DETAIL_TYPE",
    "MEETING_ENDED",
    "MEETING_ENDED_PATTERN",
    "MEETING_EVENTS",
    "MEETING_STARTED",
    "MEETING_STARTED_PATTERN",
    "MeetingEvent",
    "parse_meeting_event",
]

CHIME_SOURCE: Final = "aws.chime"
MEETING_DETAIL_TYPE: Final = "Chime Meeting State Change"

MEETING_STARTED: Final = "chime:MeetingStarted"
MEETING_ENDED: Final = "chime:MeetingEnded"
ATTENDEE_ADDED: Final = "chime:AttendeeAdded"
ATTENDEE_DELETED: Final = "chime:AttendeeDeleted"
ATTENDEE_AUTHORIZED: Final = "chime:AttendeeAuthorized"
ATTENDEE_JOINED: Final = "chime:AttendeeJoined"
ATTENDEE_LEFT: Final = "chime:AttendeeLeft"
ATTENDEE_DROPPED: Final = "chime:AttendeeDropped"
ATTENDEE_VIDEO_STARTED: Final = "chime:AttendeeVideoStarted"
ATTENDEE_VIDEO_STOPPED: Final = "chime:AttendeeVideoStopped"
ATTENDEE_CONTENT_JOINED: Final = "chime:AttendeeContentJoined"
ATTENDEE_CONTENT_LEFT: Final = "chime:AttendeeContentLeft"
ATTENDEE_CONTENT_DROPPED: Final = "chime:AttendeeContentDropped"
ATTENDEE_CONTENT_VIDEO_STARTED: Final = "chime:AttendeeContentVideoStarted"
ATTENDEE_CONTENT_VIDEO_STOPPED: Final = "chime:AttendeeContentVideoStopped"

MEETING_EVENTS: Final = frozenset({MEETING_STARTED, MEETING_ENDED})
ATTENDEE_EVENTS: Final = frozenset(
    {
        ATTENDEE_ADDED,
        ATTENDEE_DELETED,
        ATTENDEE_AUTHORIZED,
        ATTENDEE_JOINED,
        ATTENDEE_LEFT,
        ATTENDEE_DROPPED,
        ATTENDEE_VIDEO_STARTED,
        ATTENDEE_VIDEO_STOPPED,
        ATTENDEE_CONTENT_JOINED,
        ATTENDEE_CONTENT_LEFT,
        ATTENDEE_CONTENT_DROPPED,
        ATTENDEE_CONTENT_VIDEO_STARTED,
        ATTENDEE_CONTENT_VIDEO_STOPPED,
    }
)
#: Every eventType documented for "Chime Meeting State Change".
KNOWN_EVENT_TYPES: Final = MEETING_EVENTS | ATTENDEE_EVENTS

#: Someone is now in the meeting's audio/video session.
ATTENDEE_ARRIVAL_EVENTS: Final = frozenset({ATTENDEE_JOINED})
#: Someone is no longer in it (left, lost their connection, or was removed with DeleteAttendee).
ATTENDEE_DEPARTURE_EVENTS: Final = frozenset({ATTENDEE_LEFT, ATTENDEE_DROPPED, ATTENDEE_DELETED})
#: The events that change who is present, in a stable order (used in the EventBridge pattern).
ATTENDEE_PRESENCE_EVENTS: Final[tuple[str, ...]] = tuple(
    sorted(ATTENDEE_ARRIVAL_EVENTS | ATTENDEE_DEPARTURE_EVENTS)
)


def _pattern(*event_types: str) -> dict[str, Any]:
    # Filter on detail-type as well: other aws.chime events (media pipelines, channel flows) share the source.
    return {
        "source": [CHIME_SOURCE],
        "detail-type": [MEETING_DETAIL_TYPE],
        "detail": {"eventType": list(event_types)},
    }


MEETING_STARTED_PATTERN: Final = _pattern(MEETING_STARTED)
MEETING_ENDED_PATTERN: Final = _pattern(MEETING_ENDED)
# AttendeeAdded is routed too: it is how we learn our own attendee exists before it joins.
ATTENDEE_EVENTS_PATTERN: Final = _pattern(ATTENDEE_ADDED, *ATTENDEE_PRESENCE_EVENTS)

# chime-sdk-meetings GuidString; ExternalUserId/ExternalMeetingId are 2..64 (service model).
_GUID_PATTERN: Final = r"^[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}$"
_EXTERNAL_USER_ID_PATTERN: Final = r"^[-_&@+=,(){}\[\]/«».:|'\"#a-zA-Z0-9À-ÿ\s]*$"
_ID_FIELDS: Final = frozenset(
    {"id", "account", "meetingId", "attendeeId", "externalMeetingId", "externalUserId"}
)


def _version_text(value: Any) -> Any:
    # chalice.test emits "version": 0 (an int); EventBridge sends "0". bool is an int subclass: refuse it.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Version = Annotated[str, BeforeValidator(_version_text), Field(min_length=1, max_length=16)]
Guid = Annotated[str, Field(pattern=_GUID_PATTERN)]
ExternalId = Annotated[str, Field(min_length=2, max_length=64)]


_M = TypeVar("_M", bound=BaseModel)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True, populate_by_name=True)


class _Envelope(_Model):
    version: Version
    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    source: str
    account: str | None = Field(default=None, pattern=r"^[0-9]{12}$")
    region: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9-]+$")
    time: datetime
    resources: list[str] = Field(default_factory=list, max_length=100)
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]

    @field_validator("time")
    @classmethod
    def _assume_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


class _MeetingDetail(_Model):
    version: Version
    event_type: str = Field(alias="eventType")
    timestamp: int = Field(ge=0)
    meeting_id: Guid = Field(alias="meetingId")
    media_region: str = Field(alias="mediaRegion", min_length=1, max_length=32, pattern=r"^[a-z0-9-]+$")
    external_meeting_id: ExternalId | None = Field(default=None, alias="externalMeetingId")
    network_type: str | None = Field(default=None, alias="networkType", min_length=1, max_length=64)


class _AttendeeDetail(_MeetingDetail):
    attendee_id: Guid = Field(alias="attendeeId")
    external_user_id: ExternalId = Field(alias="externalUserId", pattern=_EXTERNAL_USER_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class MeetingEvent:
    """One validated meeting event. External ids are left out of repr: the service marks them sensitive."""

    event_id: str
    time: datetime
    region: str
    account: str | None
    event_type: str
    timestamp_ms: int
    meeting_id: str
    media_region: str
    external_meeting_id: str | None = field(default=None, repr=False)
    attendee_id: str | None = None
    external_user_id: str | None = field(default=None, repr=False)
    network_type: str | None = None

    def log_keys(self) -> dict[str, str]:
        """Keys safe to put on every log line while handling this event (no external ids)."""
        keys = {"event_id": self.event_id, "event_type": self.event_type, "meeting_id": self.meeting_id}
        if self.attendee_id is not None:
            keys["attendee_id"] = self.attendee_id
        return keys


def parse_meeting_event(raw: Mapping[str, Any]) -> MeetingEvent:
    """Validate an EventBridge "Chime Meeting State Change" event.

    Raises ``InvalidEvent`` (never a pydantic error) whose reason is a short code and whose detail names the
    fields involved without their values.
    """
    if not isinstance(raw, Mapping):
        raise InvalidEvent("malformed", "event is not a JSON object")
    _check_routing(raw)
    detail = raw["detail"]
    event_type = detail["eventType"]
    detail_model: type[_MeetingDetail] = _AttendeeDetail if event_type in ATTENDEE_EVENTS else _MeetingDetail
    errors: list[tuple[str, str]] = []
    envelope = _validate(_Envelope, raw, (), errors)
    body = _validate(detail_model, detail, ("detail",), errors)
    if errors or envelope is None or body is None:
        raise InvalidEvent(_reason_for(errors), "; ".join(text for _, text in errors))
    attendee = body if isinstance(body, _AttendeeDetail) else None
    return MeetingEvent(
        event_id=envelope.id,
        time=envelope.time,
        region=envelope.region,
        account=envelope.account,
        event_type=event_type,
        timestamp_ms=body.timestamp,
        meeting_id=body.meeting_id,
        media_region=body.media_region,
        external_meeting_id=body.external_meeting_id,
        attendee_id=attendee.attendee_id if attendee else None,
        external_user_id=attendee.external_user_id if attendee else None,
        network_type=body.network_type,
    )


def _check_routing(raw: Mapping[str, Any]) -> None:
    # Routing fields first: an event that is not ours is "wrong_*", whatever else is wrong with it.
    for name in ("source", "detail-type", "detail"):
        if name not in raw:
            raise InvalidEvent("missing_field", f"{name}: field required")
    if raw["source"] != CHIME_SOURCE:
        raise InvalidEvent("wrong_source", f"source: expected {CHIME_SOURCE}")
    if raw["detail-type"] != MEETING_DETAIL_TYPE:
        raise InvalidEvent("wrong_detail_type", f"detail-type: expected {MEETING_DETAIL_TYPE}")
    detail = raw["detail"]
    if not isinstance(detail, Mapping):
        raise InvalidEvent("malformed", "detail: expected an object")
    if "eventType" not in detail:
        raise InvalidEvent("missing_field", "detail.eventType: field required")
    event_type = detail["eventType"]
    if not isinstance(event_type, str) or event_type not in KNOWN_EVENT_TYPES:
        raise InvalidEvent(
            "unknown_event_type", "detail.eventType: not a documented Chime meeting event type"
        )


def _validate(
    model: type[_M], data: Mapping[str, Any], prefix: tuple[str, ...], errors: list[tuple[str, str]]
) -> _M | None:
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        for err in exc.errors(include_input=False, include_url=False, include_context=False):
            loc = (*prefix, *err["loc"])
            errors.append((_reason_of(err["type"], loc), f"{format_error_location(loc)}: {err['msg']}"))
        return None


def _reason_of(error_type: str, loc: tuple[int | str, ...]) -> str:
    if error_type == "missing":
        return "missing_field"
    if error_type in ("string_too_long", "too_long"):
        return "oversized"
    if error_type == "string_pattern_mismatch" and loc and loc[-1] in _ID_FIELDS:
        return "bad_id"
    return "malformed"


_REASON_PRIORITY: Final = ("missing_field", "bad_id", "oversized", "malformed")


def _reason_for(errors: list[tuple[str, str]]) -> str:
    reasons = {reason for reason, _ in errors}
    return next((r for r in _REASON_PRIORITY if r in reasons), "malformed")
