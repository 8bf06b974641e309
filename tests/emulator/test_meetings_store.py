"""The meetings store in-process: lifecycle events, join tokens, auto-end, listeners and fault queues."""

from __future__ import annotations

import base64
import logging
import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from hypothesis import given
from hypothesis import strategies as st

from emulator import FaultInjector, MeetingsApiError, MeetingsStore, to_eventbridge
from emulator.meetings_records import new_join_token

START = 1_714_564_800.0  # 2024-05-01T12:00:00Z


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event_type: str, detail: dict[str, Any]) -> None:
        self.events.append((event_type, detail))

    def types(self) -> list[str]:
        return [event_type for event_type, _ in self.events]


def new_store(clock: FakeClock | None = None, seed: int = 7) -> tuple[MeetingsStore, Recorder]:
    store = MeetingsStore(clock=clock or FakeClock(), urandom=random.Random(seed).randbytes)
    recorder = Recorder()
    store.add_listener(recorder)
    return store, recorder


def meeting(store: MeetingsStore, request_key: str = "token-1") -> str:
    request = {
        "ClientRequestToken": request_key,
        "MediaRegion": "us-east-1",
        "ExternalMeetingId": "mymeeting",
    }
    return str(store.create_meeting(request)["Meeting"]["MeetingId"])


def attendee(store: MeetingsStore, meeting_id: str, external_user_id: str = "dialout#1") -> str:
    return str(
        store.create_attendee(meeting_id, {"ExternalUserId": external_user_id})["Attendee"]["AttendeeId"]
    )


def test_lifecycle_events_have_the_documented_shape() -> None:
    clock = FakeClock()
    store, recorder = new_store(clock)
    meeting_id = meeting(store)
    clock.advance(1)
    attendee_id = attendee(store, meeting_id)
    clock.advance(4)
    store.join_attendee(meeting_id, attendee_id)
    clock.advance(60)
    store.drop_attendee(meeting_id, attendee_id)
    store.delete_attendee(meeting_id, attendee_id)
    clock.advance(0.5)
    store.delete_meeting(meeting_id)

    def expected(event_type: str, timestamp: int, **extra: str) -> tuple[str, dict[str, Any]]:
        detail = {"version": "0", "eventType": event_type, "timestamp": timestamp, "meetingId": meeting_id}
        return event_type, {**detail, **extra, "mediaRegion": "us-east-1"}

    who = {"attendeeId": attendee_id, "externalUserId": "dialout#1"}
    assert recorder.events == [
        expected("chime:MeetingStarted", 1714564800000, externalMeetingId="mymeeting"),
        expected("chime:AttendeeAdded", 1714564801000, **who),
        expected("chime:AttendeeJoined", 1714564805000, **who, networkType="Voip"),
        expected("chime:AttendeeDropped", 1714564865000, **who, networkType="Voip"),
        expected("chime:AttendeeDeleted", 1714564865000, **who),
        expected("chime:MeetingEnded", 1714564865500, externalMeetingId="mymeeting"),
    ]


def test_deleting_a_connected_attendee_also_disconnects_it() -> None:
    store, recorder = new_store()
    meeting_id = meeting(store)
    attendee_id = attendee(store, meeting_id)
    store.join_attendee(meeting_id, attendee_id, network_type="PSTN")
    store.join_attendee(meeting_id, attendee_id, network_type="PSTN")  # already connected: no second event

    store.delete_attendee(meeting_id, attendee_id)

    assert recorder.types()[2:] == ["chime:AttendeeJoined", "chime:AttendeeDeleted", "chime:AttendeeLeft"]
    assert recorder.events[-1][1]["networkType"] == "PSTN"


def test_eventbridge_envelope_is_what_the_default_bus_delivers() -> None:
    store, recorder = new_store()
    meeting(store)
    detail = recorder.events[0][1]

    envelope = to_eventbridge(detail, "us-east-1", "111122223333")

    assert envelope["source"] == "aws.chime"
    assert envelope["detail-type"] == "Chime Meeting State Change"
    assert (envelope["version"], envelope["time"], envelope["resources"]) == ("0", "2024-05-01T12:00:00Z", [])
    assert (envelope["account"], envelope["region"], envelope["detail"]) == (
        "111122223333",
        "us-east-1",
        detail,
    )
    assert uuid.UUID(envelope["id"])
    parsed = parse(event=envelope, model=EventBridgeModel)
    assert parsed.detail_type == "Chime Meeting State Change"
    assert to_eventbridge(detail, "us-east-1", "1", event_id="fixed")["id"] == "fixed"


@given(seed=st.integers(min_value=0, max_value=2**32))
def test_join_tokens_are_base64_with_characters_that_need_escaping(seed: int) -> None:
    token = new_join_token(random.Random(seed).randbytes)
    assert 60 <= len(token) <= 200
    assert "+" in token
    assert "/" in token
    assert base64.b64decode(token, validate=True)


def test_some_join_tokens_carry_padding() -> None:
    tokens = [new_join_token(random.Random(seed).randbytes) for seed in range(30)]
    assert any(token.endswith("=") for token in tokens)
    assert any("=" not in token for token in tokens)


def test_ids_and_tokens_follow_the_injected_randomness() -> None:
    first, _ = new_store(seed=3)
    second, _ = new_store(seed=3)
    first_meeting, second_meeting = meeting(first), meeting(second)
    assert first_meeting == second_meeting
    assert first.create_attendee(first_meeting, {"ExternalUserId": "u1"}) == second.create_attendee(
        second_meeting, {"ExternalUserId": "u1"}
    )


def test_meeting_ends_after_five_minutes_with_nobody_connected() -> None:
    clock = FakeClock()
    store, recorder = new_store(clock)
    meeting_id = meeting(store)
    attendee_id = attendee(store, meeting_id)
    token = store.create_attendee(meeting_id, {"ExternalUserId": "dialout#1"})["Attendee"]["JoinToken"]
    clock.advance(299)
    store.join_attendee(meeting_id, attendee_id)
    clock.advance(3600)
    assert store.expire_meetings() == []
    store.leave_attendee(meeting_id, attendee_id)
    clock.advance(299)
    assert store.expire_meetings() == []

    clock.advance(1)

    assert store.expire_meetings() == [meeting_id]
    assert recorder.types()[-1] == "chime:MeetingEnded"
    assert store.is_token_valid(token) is None
    assert store.expire_meetings() == []


def test_meeting_ends_after_24_hours_even_with_people_connected() -> None:
    clock = FakeClock()
    store, _ = new_store(clock)
    meeting_id = meeting(store)
    store.join_attendee(meeting_id, attendee(store, meeting_id))
    clock.advance(24 * 3600 - 1)
    assert store.expire_meetings() == []
    clock.advance(1)
    assert store.expire_meetings() == [meeting_id]


def test_listeners_may_call_back_into_the_store() -> None:
    store, recorder = new_store()

    def add_dialout(event_type: str, detail: dict[str, Any]) -> None:
        if event_type == "chime:MeetingStarted":
            attendee(store, detail["meetingId"], "dialout#auto")

    store.add_listener(add_dialout)
    meeting_id = meeting(store)

    assert recorder.types() == ["chime:MeetingStarted", "chime:AttendeeAdded"]
    assert store.list_attendees(meeting_id, None, None)["Attendees"][0]["ExternalUserId"] == "dialout#auto"


def test_a_failing_listener_does_not_fail_the_call(caplog: pytest.LogCaptureFixture) -> None:
    store, recorder = new_store()

    def broken(event_type: str, detail: dict[str, Any]) -> None:
        raise RuntimeError("listener bug")

    store.add_listener(broken)
    with caplog.at_level(logging.ERROR, logger="emulator.meetings_store"):
        meeting(store)

    assert recorder.types() == ["chime:MeetingStarted"]
    assert "listener failed" in caplog.text
    store.remove_listener(broken)


@pytest.mark.parametrize("action", ["join_attendee", "leave_attendee", "drop_attendee"])
def test_simulating_an_unknown_attendee_is_not_found(action: str) -> None:
    store, _ = new_store()
    meeting_id = meeting(store)
    with pytest.raises(MeetingsApiError) as raised:
        getattr(store, action)(meeting_id, "00000000-0000-4000-8000-000000000000")
    assert (raised.value.code, raised.value.status) == ("NotFoundException", 404)


def test_meeting_features_lower_the_attendee_limit() -> None:
    store, _ = new_store()
    request = {
        "ClientRequestToken": "small",
        "MediaRegion": "us-east-1",
        "ExternalMeetingId": "small",
        "MeetingFeatures": {"Attendee": {"MaxCount": 2}},
    }
    meeting_id = store.create_meeting(request)["Meeting"]["MeetingId"]
    attendee(store, meeting_id, "one")
    attendee(store, meeting_id, "two")
    with pytest.raises(MeetingsApiError) as raised:
        attendee(store, meeting_id, "three")
    assert raised.value.code == "LimitExceededException"


def test_active_meetings_are_limited() -> None:
    store = MeetingsStore(max_active_meetings=1)
    first = meeting(store, "first")
    with pytest.raises(MeetingsApiError) as raised:
        meeting(store, "second")
    assert raised.value.code == "LimitExceededException"
    store.end_meeting(first)
    assert meeting(store, "second")


def test_secrets_stay_out_of_reprs_and_snapshots() -> None:
    store, _ = new_store()
    meeting_id = meeting(store)
    token = store.create_attendee(meeting_id, {"ExternalUserId": "dialout#1"})["Attendee"]["JoinToken"]
    record = store._meetings[meeting_id]  # the records behind the store

    assert token not in repr(record)
    assert "dialout#1" not in repr(record)
    assert token not in repr(store.snapshot())


def test_fault_injector_queues_faults_in_order() -> None:
    faults = FaultInjector(operations=["CreateAttendee"], errors=["ThrottlingException", "NotFoundException"])
    faults.inject("CreateAttendee", "ThrottlingException")
    faults.inject("CreateAttendee", "NotFoundException", times=2, retry_after=3)
    assert faults.pending() == {"CreateAttendee": 3}

    taken = [faults.take("CreateAttendee") for _ in range(4)]

    assert [fault.error if fault else None for fault in taken] == [
        "ThrottlingException",
        "NotFoundException",
        "NotFoundException",
        None,
    ]
    assert taken[1] is not None
    assert taken[1].retry_after == 3


@pytest.mark.parametrize(
    ("operation", "error", "times", "retry_after"),
    [
        ("Nope", "ThrottlingException", 1, None),
        ("CreateAttendee", "Nope", 1, None),
        ("CreateAttendee", "ThrottlingException", 0, None),
        ("CreateAttendee", "ThrottlingException", True, None),
        ("CreateAttendee", "ThrottlingException", 1, -1),
    ],
)
def test_fault_injector_refuses_nonsense(operation: str, error: str, times: Any, retry_after: Any) -> None:
    faults = FaultInjector(operations=["CreateAttendee"], errors=["ThrottlingException"])
    with pytest.raises(ValueError, match=r"\w"):
        faults.inject(operation, error, times=times, retry_after=retry_after)


MEMBERS = [
    "ClientRequestToken", "MediaRegion", "ExternalMeetingId", "MeetingFeatures", "TenantIds", "Tags",
    "MeetingHostId", "ExternalUserId", "Capabilities", "Attendees", "Audio", "Attendee", "MaxCount",
]  # fmt: skip
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=80)
    | st.sampled_from(["SendReceive", "us-east-1"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(MEMBERS) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(request=st.dictionaries(st.sampled_from(MEMBERS), JSON_VALUES, max_size=6))
def test_arbitrary_request_bodies_get_an_answer_or_a_client_error(request: dict[str, Any]) -> None:
    store = MeetingsStore()
    meeting_id = meeting(store)
    statuses: list[int] = []
    calls: list[Callable[[], object]] = [
        lambda: store.create_meeting(request),
        lambda: store.create_attendee(meeting_id, request),
        lambda: store.batch_create_attendee(meeting_id, request),
    ]
    for call in calls:
        try:
            call()
        except MeetingsApiError as error:
            statuses.append(error.status)
    assert all(400 <= status < 500 for status in statuses)
