"""Meeting events: every documented eventType parses; malformed input is rejected with a reason, no values."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.errors import InvalidEvent
from chalicelib.events import (
    ATTENDEE_ADDED,
    ATTENDEE_EVENTS,
    ATTENDEE_EVENTS_PATTERN,
    ATTENDEE_PRESENCE_EVENTS,
    CHIME_SOURCE,
    KNOWN_EVENT_TYPES,
    MEETING_DETAIL_TYPE,
    MEETING_ENDED,
    MEETING_ENDED_PATTERN,
    MEETING_STARTED,
    MEETING_STARTED_PATTERN,
    MeetingEvent,
    parse_meeting_event,
)
from tests.app.fixtures import event_names, load_event

MEETING_ID = "87654321-4321-4321-1234-111122223333"
HUMAN_ID = "11111111-2222-3333-4444-555555555555"

VALID_FIXTURES = [name for name in event_names() if not name.startswith("malformed_")]

MALFORMED: dict[str, str] = {
    "malformed_missing_meeting_id": "missing_field",
    "malformed_missing_attendee_id": "missing_field",
    "malformed_missing_external_user_id": "missing_field",
    "malformed_missing_event_type": "missing_field",
    "malformed_missing_media_region": "missing_field",
    "malformed_missing_id": "missing_field",
    "malformed_missing_detail_type": "missing_field",
    "malformed_missing_detail": "missing_field",
    "malformed_bad_meeting_id": "bad_id",
    "malformed_bad_attendee_id": "bad_id",
    "malformed_bad_account": "bad_id",
    "malformed_wrong_detail_type": "wrong_detail_type",
    "malformed_wrong_source": "wrong_source",
    "malformed_unknown_event_type": "unknown_event_type",
    "malformed_oversized_external_meeting_id": "oversized",
    "malformed_oversized_external_user_id": "oversized",
    "malformed_oversized_network_type": "oversized",
    "malformed_short_external_meeting_id": "malformed",
    "malformed_bad_timestamp": "malformed",
    "malformed_bad_time": "malformed",
    "malformed_detail_not_object": "malformed",
    "malformed_bool_version": "malformed",
}


REASONS = {
    "wrong_source",
    "wrong_detail_type",
    "unknown_event_type",
    "missing_field",
    "bad_id",
    "oversized",
    "malformed",
}


def _string_leaves(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_string_leaves(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_string_leaves(v) for v in value)) if value else set()
    return set()


def test_every_documented_event_type_has_a_fixture_that_parses() -> None:
    parsed_types = {parse_meeting_event(load_event(name)).event_type for name in VALID_FIXTURES}
    assert parsed_types == KNOWN_EVENT_TYPES
    assert len(KNOWN_EVENT_TYPES) == 15


def test_every_malformed_fixture_has_an_expected_reason() -> None:
    assert set(MALFORMED) == set(event_names("malformed_"))


def test_meeting_started_fields() -> None:
    # GIVEN the documented MeetingStarted event
    raw = load_event("meeting_started")
    # WHEN it is parsed
    event = parse_meeting_event(raw)
    # THEN every field is carried over, typed
    assert event == MeetingEvent(
        event_id="6f8d3c2e-1111-2222-3333-444455556601",
        time=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        region="us-east-1",
        account="111122223333",
        event_type=MEETING_STARTED,
        timestamp_ms=1714564800000,
        meeting_id=MEETING_ID,
        media_region="us-east-1",
        external_meeting_id="sales-weekly-2024-05-01",
    )
    assert event.attendee_id is None
    assert event.network_type is None


def test_attendee_joined_fields() -> None:
    event = parse_meeting_event(load_event("attendee_joined"))
    assert event.event_type == "chime:AttendeeJoined"
    assert event.attendee_id == HUMAN_ID
    assert event.external_user_id == "alice@example.com"
    assert event.network_type == "Voip"
    assert event.external_meeting_id is None


def test_any_network_type_string_is_accepted() -> None:
    # The value for a SIP attendee is undocumented; "PSTN" stands in for whatever it is.
    event = parse_meeting_event(load_event("attendee_joined_sip"))
    assert event.network_type == "PSTN"
    assert event.external_user_id == "dialout#vc1#87654321"


def test_attendee_events_without_network_type_parse() -> None:
    assert parse_meeting_event(load_event("attendee_added")).network_type is None


def test_int_version_from_chalice_test_is_accepted() -> None:
    # GIVEN an event shaped like chalice.test's generate_cw_event (int version)
    raw = load_event("meeting_started_int_version")
    assert raw["version"] == 0
    # WHEN parsed THEN it is accepted
    event = parse_meeting_event(raw)
    assert event.region == "us-west-2"
    assert event.account == "123456789012"


def test_missing_account_from_moto_delivery_is_accepted() -> None:
    raw = load_event("meeting_started_no_account")
    assert "account" not in raw
    assert parse_meeting_event(raw).account is None


def test_meeting_without_external_meeting_id_is_accepted() -> None:
    assert (
        parse_meeting_event(load_event("meeting_started_no_external_meeting_id")).external_meeting_id is None
    )


def test_naive_time_is_taken_as_utc() -> None:
    raw = load_event("meeting_ended")
    raw["time"] = "2024-05-01T13:00:00"
    assert parse_meeting_event(raw).time == datetime(2024, 5, 1, 13, 0, tzinfo=UTC)


def test_unknown_extra_fields_are_ignored() -> None:
    raw = load_event("meeting_ended")
    raw["replay-name"] = "replay-1"
    raw["detail"]["newField"] = {"x": 1}
    assert parse_meeting_event(raw).event_type == MEETING_ENDED


def test_event_survives_a_json_round_trip_through_sqs_bodies() -> None:
    raw = load_event("attendee_dropped")
    assert parse_meeting_event(json.loads(json.dumps(raw))) == parse_meeting_event(raw)


@pytest.mark.parametrize(("name", "reason"), sorted(MALFORMED.items()))
def test_malformed_event_rejected_with_reason_and_no_values(name: str, reason: str) -> None:
    # GIVEN a malformed event carrying sensitive external ids
    raw = load_event(name)
    # WHEN it is parsed
    with pytest.raises(InvalidEvent) as caught:
        parse_meeting_event(raw)
    # THEN the reason is the expected code and no input value appears in the error
    assert caught.value.reason == reason
    text = f"{caught.value} {caught.value.detail} {caught.value!r}"
    for value in _string_leaves(raw) - {CHIME_SOURCE, MEETING_DETAIL_TYPE}:
        if len(value) >= 3:
            assert value not in text
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ or caught.value.__context__ is None


def test_rejection_detail_names_the_field() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_meeting_event(load_event("malformed_bad_attendee_id"))
    assert caught.value.detail.startswith("detail.attendeeId:")


def test_non_mapping_input_is_malformed() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_meeting_event([1, 2, 3])  # type: ignore[arg-type]  # a JSON array where an object belongs
    assert caught.value.reason == "malformed"


def test_repr_leaves_out_sensitive_external_ids() -> None:
    event = parse_meeting_event(load_event("attendee_left"))
    assert "alice@example.com" not in repr(event)
    started = parse_meeting_event(load_event("meeting_started"))
    assert "sales-weekly" not in repr(started)
    assert "sales-weekly" not in json.dumps(started.log_keys())


def test_log_keys_are_ids_only() -> None:
    event = parse_meeting_event(load_event("attendee_joined"))
    assert event.log_keys() == {
        "event_id": "6f8d3c2e-1111-2222-3333-444455556613",
        "event_type": "chime:AttendeeJoined",
        "meeting_id": MEETING_ID,
        "attendee_id": HUMAN_ID,
    }


def test_patterns_filter_on_source_detail_type_and_event_type() -> None:
    for pattern, types in (
        (MEETING_STARTED_PATTERN, [MEETING_STARTED]),
        (MEETING_ENDED_PATTERN, [MEETING_ENDED]),
        (ATTENDEE_EVENTS_PATTERN, [ATTENDEE_ADDED, *ATTENDEE_PRESENCE_EVENTS]),
    ):
        assert pattern == {
            "source": [CHIME_SOURCE],
            "detail-type": [MEETING_DETAIL_TYPE],
            "detail": {"eventType": types},
        }
    assert set(ATTENDEE_PRESENCE_EVENTS) == {
        "chime:AttendeeJoined",
        "chime:AttendeeLeft",
        "chime:AttendeeDropped",
        "chime:AttendeeDeleted",
    }
    assert set(ATTENDEE_PRESENCE_EVENTS) <= ATTENDEE_EVENTS


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
_BASE = [load_event(name) for name in VALID_FIXTURES]


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(_BASE),
    in_detail=st.booleans(),
    key=st.sampled_from(
        [
            *("version", "id", "source", "account", "region", "time", "resources", "detail-type"),
            *("eventType", "timestamp", "meetingId", "attendeeId", "externalUserId", "externalMeetingId"),
            "networkType",
        ]
    ),
    value=_JSON,
)
def test_any_single_field_mutation_gives_an_event_or_invalid_event(
    base: dict[str, Any], in_detail: bool, key: str, value: Any
) -> None:
    raw = copy.deepcopy(base)
    (raw["detail"] if in_detail else raw)[key] = value
    outcome: MeetingEvent | InvalidEvent
    try:
        outcome = parse_meeting_event(raw)
    except InvalidEvent as exc:
        outcome = exc
    if isinstance(outcome, InvalidEvent):
        assert outcome.reason in REASONS
    else:
        assert outcome.event_type in KNOWN_EVENT_TYPES


@settings(max_examples=200, deadline=None)
@given(raw=st.dictionaries(st.text(max_size=12), _JSON, max_size=8))
def test_arbitrary_objects_never_escape_as_other_errors(raw: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        parse_meeting_event(raw)
