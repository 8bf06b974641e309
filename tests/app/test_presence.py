"""Human presence and the humans-gone rule: out-of-order events, injected clock, our attendee ignored."""

from __future__ import annotations

from chalice.test import Client

from chalicelib.events import ATTENDEE_JOINED, ATTENDEE_LEFT, MEETING_STARTED
from chalicelib.sweeper import sweep
from tests.app.conftest import Harness, meeting_event

HUMAN = "11111111-2222-3333-4444-555555555555"


def _start(client: Client, harness: Harness) -> tuple[str, str]:
    meeting_id = harness.create_meeting()
    client.lambda_.invoke("on_meeting_started", meeting_event(MEETING_STARTED, meeting_id, _ms(harness)))
    return meeting_id, f"{meeting_id}:vc1"


def _ms(harness: Harness, offset_s: float = 0) -> int:
    return int((harness.clock.now + offset_s) * 1000)


def _human(client: Client, event_type: str, meeting_id: str, at_ms: int, attendee_id: str = HUMAN) -> None:
    client.lambda_.invoke(
        "on_attendee_event", meeting_event(event_type, meeting_id, at_ms, attendee_id=attendee_id)
    )


def _desired(harness: Harness, call_id: str) -> tuple[str, str | None]:
    record = harness.plane().calls.get(call_id)
    assert record is not None
    return record.desired, record.hangup_reason


def test_left_arriving_after_a_later_joined_keeps_the_human(client: Client, harness: Harness) -> None:
    meeting_id, call_id = _start(client, harness)
    t = _ms(harness)
    _human(client, ATTENDEE_JOINED, meeting_id, t + 7_000)
    _human(client, ATTENDEE_LEFT, meeting_id, t + 5_000)
    meeting = harness.plane().meeting_records.get(meeting_id)
    assert meeting is not None
    assert meeting.present_humans == {HUMAN}
    harness.clock.advance(3600)
    sweep(harness.plane())
    assert _desired(harness, call_id) == ("connected", None)


def test_humans_gone_past_grace_ends_the_call(client: Client, harness: Harness) -> None:
    meeting_id, call_id = _start(client, harness)
    _human(client, ATTENDEE_JOINED, meeting_id, _ms(harness, 1))
    harness.clock.advance(10)
    _human(client, ATTENDEE_LEFT, meeting_id, _ms(harness))
    assert _desired(harness, call_id) == ("connected", None)
    harness.clock.advance(119)
    sweep(harness.plane())
    assert _desired(harness, call_id) == ("connected", None)
    harness.clock.advance(1)
    assert sweep(harness.plane()).hangups == 1
    assert _desired(harness, call_id) == ("ended", "humans_gone")


def test_humans_back_before_grace_cancel_nothing(client: Client, harness: Harness) -> None:
    meeting_id, call_id = _start(client, harness)
    _human(client, ATTENDEE_JOINED, meeting_id, _ms(harness, 1))
    harness.clock.advance(10)
    _human(client, ATTENDEE_LEFT, meeting_id, _ms(harness))
    harness.clock.advance(60)
    _human(
        client, ATTENDEE_JOINED, meeting_id, _ms(harness), attendee_id="22222222-2222-3333-4444-555555555555"
    )
    harness.clock.advance(600)
    sweep(harness.plane())
    assert _desired(harness, call_id) == ("connected", None)


def test_no_human_ever_counts_from_call_creation(client: Client, harness: Harness) -> None:
    _, call_id = _start(client, harness)
    harness.clock.advance(119)
    sweep(harness.plane())
    assert _desired(harness, call_id) == ("connected", None)
    harness.clock.advance(1)
    sweep(harness.plane())
    assert _desired(harness, call_id) == ("ended", "humans_gone")


def test_our_own_attendee_is_not_a_human(client: Client, harness: Harness) -> None:
    meeting_id, call_id = _start(client, harness)
    call = harness.plane().calls.get(call_id)
    assert call is not None
    assert call.attendee_id is not None
    client.lambda_.invoke(
        "on_attendee_event",
        meeting_event(
            ATTENDEE_JOINED,
            meeting_id,
            _ms(harness, 1),
            attendee_id=call.attendee_id,
            external_user_id=call.external_user_id,
        ),
    )
    meeting = harness.plane().meeting_records.get(meeting_id)
    assert meeting is None or not meeting.present_humans
    harness.clock.advance(120)
    sweep(harness.plane())
    assert _desired(harness, call_id) == ("ended", "humans_gone")
