"""Records behind the meetings store and the wire shapes they render: meetings, attendees, join tokens.

Also the CreateMeeting optional-member checks and the opaque ListAttendees page token.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from emulator.meetings_events import attendee_detail, meeting_detail
from emulator.meetings_validation import (
    bad_request,
    check_external_user_id,
    check_optional_string,
    require_object,
)

__all__ = [
    "MAX_ATTENDEES_PER_MEETING",
    "AttendeeRecord",
    "MeetingRecord",
    "decode_page_token",
    "encode_page_token",
    "new_join_token",
    "optional_meeting_members",
]

MAX_ATTENDEES_PER_MEETING: Final = 250


def new_join_token(urandom: Callable[[int], bytes] = os.urandom) -> str:
    """A base64 join token of 60..200 characters that contains ``+`` and ``/`` (and ``=`` two times in three).

    Real tokens are opaque base64-like strings; these always carry the characters that need care in a SIP URI.
    """
    for _ in range(1000):
        size = 45 + urandom(1)[0] % 106  # 45..150 random bytes -> 60..200 base64 characters
        token = base64.b64encode(urandom(size)).decode("ascii")
        if "+" in token and "/" in token:
            return token
    raise RuntimeError("urandom keeps producing tokens without '+' and '/'; is it random?")


@dataclass(slots=True)
class AttendeeRecord:
    attendee_id: str
    external_user_id: str = field(repr=False)
    join_token: str = field(repr=False)
    capabilities: dict[str, str]
    seq: int
    deleted: bool = False
    network_type: str | None = None  # set while a simulated client is connected

    def wire(self) -> dict[str, Any]:
        return {
            "ExternalUserId": self.external_user_id,
            "AttendeeId": self.attendee_id,
            "JoinToken": self.join_token,
            "Capabilities": dict(self.capabilities),
        }


@dataclass(slots=True)
class MeetingRecord:
    meeting_id: str
    external_meeting_id: str = field(repr=False)
    media_region: str
    client_request_token: str = field(repr=False)
    created_ms: int
    max_attendees: int
    arn: str
    extra: dict[str, Any] = field(default_factory=dict)  # optional members echoed back as given
    attendees: dict[str, AttendeeRecord] = field(default_factory=dict)
    by_external_user_id: dict[str, str] = field(default_factory=dict, repr=False)
    ended_ms: int | None = None
    idle_since_ms: int | None = None  # None while some simulated client is connected
    next_seq: int = 0

    def live_attendees(self) -> list[AttendeeRecord]:
        return [attendee for attendee in self.attendees.values() if not attendee.deleted]

    def meeting_event(self, event_type: str, timestamp_ms: int) -> tuple[str, dict[str, Any]]:
        detail = meeting_detail(
            event_type,
            timestamp_ms=timestamp_ms,
            meeting_id=self.meeting_id,
            external_meeting_id=self.external_meeting_id,
            media_region=self.media_region,
        )
        return event_type, detail

    def attendee_event(
        self, event_type: str, attendee: AttendeeRecord, timestamp_ms: int, network_type: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        detail = attendee_detail(
            event_type,
            timestamp_ms=timestamp_ms,
            meeting_id=self.meeting_id,
            attendee_id=attendee.attendee_id,
            external_user_id=attendee.external_user_id,
            media_region=self.media_region,
            network_type=network_type,
        )
        return event_type, detail

    def summary(self) -> dict[str, Any]:
        """State for debugging, without join tokens or the sensitive external ids."""
        return {
            "MeetingId": self.meeting_id,
            "MediaRegion": self.media_region,
            "Ended": self.ended_ms is not None,
            "Attendees": [
                {"AttendeeId": attendee.attendee_id, "Connected": attendee.network_type is not None}
                for attendee in self.live_attendees()
            ],
        }

    def wire(self) -> dict[str, Any]:
        return {
            "MeetingId": self.meeting_id,
            "ExternalMeetingId": self.external_meeting_id,
            "MediaRegion": self.media_region,
            "MediaPlacement": media_placement(self.meeting_id, self.media_region),
            "MeetingArn": self.arn,
            **self.extra,
        }


def media_placement(meeting_id: str, region: str) -> dict[str, str]:
    """Plausible, never-contacted media URLs in the shape the service returns."""
    short = "".join(part[0] for part in region.split("-")[:-1]) + region.rsplit("-", 1)[-1]
    cell = f"m{int(meeting_id[:2], 16) % 9 + 1}.{short}.app.chime.aws"
    return {
        "AudioHostUrl": f"{meeting_id[:8]}{meeting_id[9:13]}.k.{cell}:3478",
        "AudioFallbackUrl": f"wss://haxrp.{cell}:443/calls/{meeting_id}",
        "SignalingUrl": f"wss://signal.{cell}/control/{meeting_id}",
        "TurnControlUrl": f"https://{region}.meetings.chime.aws/v2/turn_sessions",
        "ScreenDataUrl": f"wss://bitpw.{cell}:443/v2/screen/{meeting_id}",
        "ScreenViewingUrl": f"wss://bitpw.{cell}:443/ws/connect?passcode=null&viewer_uuid=null&X-BitHub-Call-Id={meeting_id}",
        "ScreenSharingUrl": f"wss://bitpw.{cell}:443/v2/screen/{meeting_id}",
        "EventIngestionUrl": f"https://data.svc.{short}.ingest.chime.aws/v1/client-events",
    }


def optional_meeting_members(request: Mapping[str, Any]) -> dict[str, Any]:
    """CreateMeeting's optional members that the Meeting shape echoes, checked against the model's bounds."""
    extra: dict[str, Any] = {}
    host = check_external_user_id(request.get("MeetingHostId"), "meetingHostId", required=False)
    if host is not None:
        extra["MeetingHostId"] = host
    primary = check_optional_string(request.get("PrimaryMeetingId"), "primaryMeetingId", 2, 64)
    if primary is not None:
        extra["PrimaryMeetingId"] = primary
    tenants = request.get("TenantIds")
    if tenants is not None:
        if not isinstance(tenants, list) or not 1 <= len(tenants) <= 5:
            raise bad_request("tenantIds", "Member must have length between 1 and 5")
        extra["TenantIds"] = [check_optional_string(tenant, "tenantIds.member", 2, 256) for tenant in tenants]
    features = request.get("MeetingFeatures")
    if features is not None:
        features = require_object(features, "meetingFeatures")
        max_count = require_object(features.get("Attendee", {}), "meetingFeatures.attendee").get("MaxCount")
        if max_count is not None and (
            not isinstance(max_count, int) or not 1 <= max_count <= MAX_ATTENDEES_PER_MEETING
        ):
            raise bad_request("meetingFeatures.attendee.maxCount", "Member must have value between 1 and 250")
        extra["MeetingFeatures"] = dict(features)
    network_type = request.get("MediaPlacementNetworkType")
    if network_type is not None and network_type not in ("Ipv4Only", "DualStack"):
        raise bad_request(
            "mediaPlacementNetworkType", "Member must satisfy enum value set: [Ipv4Only, DualStack]"
        )
    tags = request.get("Tags")
    if tags is not None and (not isinstance(tags, list) or len(tags) > 50):
        raise bad_request("tags", "Member must have length less than or equal to 50")
    return extra


def encode_page_token(meeting_id: str, last_seq: int) -> str:
    return base64.urlsafe_b64encode(f"{meeting_id}:{last_seq}".encode()).decode("ascii")


def decode_page_token(token: str | None, meeting_id: str) -> int:
    """The sequence number after which the next page starts; -1 for the first page."""
    if token is None:
        return -1
    try:
        owner, _, seq = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii").rpartition(":")
        if owner == meeting_id and seq.isdigit():
            return int(seq)
    except (ValueError, UnicodeError):
        pass
    raise bad_request("nextToken", "Member must be a token returned by a previous ListAttendees call")
