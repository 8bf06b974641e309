"""The Chalice handlers end to end: chalice.test Client -> chalicelib -> moto + the Meetings emulator."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.contract import DialRequest
from chalicelib.control import EventHandler, handle_meeting_ended, handle_meeting_started, run_event
from chalicelib.errors import MeetingsUnavailable
from chalicelib.events import (
    ATTENDEE_DELETED,
    ATTENDEE_DROPPED,
    ATTENDEE_JOINED,
    ATTENDEE_LEFT,
    MEETING_ENDED,
    MEETING_STARTED,
)
from chalicelib.presence import handle_attendee_event
from tests.app.conftest import Harness, meeting_event
from tests.app.fixtures import event_names, load_event


def _ms(harness: Harness) -> int:
    return int(harness.clock.now * 1000)


def _start(client: Client, harness: Harness, meeting_id: str, **kw: Any) -> dict[str, Any]:
    event = meeting_event(MEETING_STARTED, meeting_id, _ms(harness), **kw)
    client.lambda_.invoke("on_meeting_started", event)
    return event


def _metric_lines(output: str, name: str) -> list[dict[str, Any]]:
    blobs = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    return [b for b in blobs if name in b]


def test_meeting_started_five_times_gives_one_attendee_one_record_one_job(
    client: Client, harness: Harness
) -> None:
    meeting_id = harness.create_meeting()
    event = meeting_event(MEETING_STARTED, meeting_id, _ms(harness))
    for _ in range(5):
        client.lambda_.invoke("on_meeting_started", event)
    assert harness.emulator.request_count("CreateAttendee") == 1
    assert len(harness.aws.call_items()) == 1
    messages = harness.aws.receive_all()
    assert len(messages) == 1
    attrs = messages[0]["MessageAttributes"]
    assert attrs["call_id"]["StringValue"] == f"{meeting_id}:vc1"
    assert attrs["meeting_id"]["StringValue"] == meeting_id
    assert attrs["attempt"]["StringValue"] == "1"


def test_enqueued_body_is_a_dial_request_v1_that_round_trips(client: Client, harness: Harness) -> None:
    meeting_id = harness.create_meeting()
    _start(client, harness, meeting_id)
    (message,) = harness.aws.receive_all()
    job = DialRequest.from_json(message["Body"])
    assert (job.version, job.attempt, job.meeting_id, job.external_meeting_id) == (
        1,
        1,
        meeting_id,
        "sales-42",
    )
    assert harness.emulator.is_token_valid(job.join_token.get_secret_value()) == (meeting_id, job.attendee_id)
    assert DialRequest.from_json(job.to_json()) == job
    assert job.target.host == "abc.voiceconnector.chime.aws"


def test_chalice_generated_event_with_int_version_is_accepted(client: Client, harness: Harness) -> None:
    meeting_id = harness.create_meeting()
    detail = meeting_event(MEETING_STARTED, meeting_id, _ms(harness))["detail"]
    event = client.events.generate_cw_event("aws.chime", "Chime Meeting State Change", detail, [])
    client.lambda_.invoke("on_meeting_started", event)
    assert len(harness.aws.receive_all()) == 1


def test_meeting_ended_before_started_creates_nothing(client: Client, harness: Harness) -> None:
    meeting_id = harness.create_meeting()
    client.lambda_.invoke("on_meeting_ended", meeting_event(MEETING_ENDED, meeting_id, _ms(harness) + 5))
    _start(client, harness, meeting_id)
    assert harness.emulator.request_count("CreateAttendee") == 0
    assert harness.aws.call_items() == []
    assert harness.aws.receive_all() == []


def test_concurrent_invocations_give_one_attendee_one_job(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "plane_factory", harness.plane)
    meeting_id = harness.create_meeting()
    event = meeting_event(MEETING_STARTED, meeting_id, _ms(harness))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: app_module.on_meeting_started(event, None), range(8)))
    assert harness.emulator.request_count("CreateAttendee") == 1
    assert len(harness.aws.call_items()) == 1
    assert len(harness.aws.receive_all()) == 1


# Chalice's CloudWatchEvent wrapper itself needs these keys; EventBridge always sends them, so an event
# without one cannot reach the handler through a rule. Such fixtures go to the layer behind the handler.
_CHALICE_ENVELOPE_KEYS = (
    "version",
    "account",
    "region",
    "detail",
    "detail-type",
    "source",
    "time",
    "id",
    "resources",
)


_HANDLERS: dict[str, EventHandler] = {
    "on_meeting_started": handle_meeting_started,
    "on_meeting_ended": handle_meeting_ended,
    "on_attendee_event": handle_attendee_event,
}


def _deliver(client: Client, harness: Harness, handler_name: str, event: dict[str, Any]) -> None:
    if all(key in event for key in _CHALICE_ENVELOPE_KEYS):
        client.lambda_.invoke(handler_name, event)
    else:
        run_event(event, _HANDLERS[handler_name], harness.plane, os.environ)


@pytest.mark.parametrize("name", event_names("malformed_"))
def test_malformed_events_are_rejected_and_counted(
    client: Client, harness: Harness, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    event = load_event(name)
    for handler_name in _HANDLERS:
        _deliver(client, harness, handler_name, event)  # no exception escapes
    rejected = _metric_lines(capsys.readouterr().out, "EventsRejected")
    assert len([b for b in rejected if "reason" in b]) == 3
    assert harness.aws.call_items() == []


def test_oversized_string_rejected_with_reason(
    client: Client, harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    event = meeting_event(
        MEETING_STARTED, harness.create_meeting(), _ms(harness), external_meeting_id="x" * 65
    )
    client.lambda_.invoke("on_meeting_started", event)
    reasons = [b["reason"] for b in _metric_lines(capsys.readouterr().out, "EventsRejected") if "reason" in b]
    assert reasons == ["oversized"]


def test_every_fixture_event_type_is_handled(client: Client, harness: Harness) -> None:
    for name in event_names("attendee_") + event_names("meeting_"):
        event = load_event(name)
        handler = {
            "chime:MeetingStarted": "on_meeting_started",
            "chime:MeetingEnded": "on_meeting_ended",
        }.get(event["detail"]["eventType"], "on_attendee_event")
        _deliver(client, harness, handler, event)


def test_meeting_matching_no_rule_is_skipped_and_counted(
    client: Client, harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    meeting_id = harness.create_meeting("support-1")
    _start(client, harness, meeting_id, external_meeting_id="support-1")
    assert harness.aws.call_items() == []
    assert harness.emulator.request_count("CreateAttendee") == 0
    assert _metric_lines(capsys.readouterr().out, "MeetingsSkipped")


def test_not_found_fails_call_without_retry(
    client: Client, harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    meeting_id = harness.create_meeting()
    harness.emulator.faults.inject("CreateAttendee", "NotFoundException")
    _start(client, harness, meeting_id)
    (item,) = harness.aws.call_items()
    assert (item["state"]["S"], item["end_reason"]["S"]) == ("failed", "meeting_gone")
    assert harness.emulator.request_count("CreateAttendee") == 1
    assert harness.aws.receive_all() == []
    failed = _metric_lines(capsys.readouterr().out, "CallsFailed")
    assert any(b.get("reason") == "meeting_gone" for b in failed)


def test_limit_exceeded_fails_target_with_metric_called_once(
    client: Client, harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    meeting_id = harness.create_meeting()
    harness.emulator.faults.inject("CreateAttendee", "LimitExceededException")
    _start(client, harness, meeting_id)
    assert harness.emulator.request_count("CreateAttendee") == 1
    (item,) = harness.aws.call_items()
    assert (item["state"]["S"], item["end_reason"]["S"]) == ("failed", "attendee_limit")
    out = capsys.readouterr().out
    assert any(b.get("code") == "LimitExceededException" for b in _metric_lines(out, "CreateAttendeeErrors"))


def test_throttling_exhausted_raises_so_eventbridge_retries(client: Client, harness: Harness) -> None:
    meeting_id = harness.create_meeting()
    harness.emulator.faults.inject("CreateAttendee", "ThrottlingException", times=4)
    event = meeting_event(MEETING_STARTED, meeting_id, _ms(harness))
    with pytest.raises(MeetingsUnavailable):
        client.lambda_.invoke("on_meeting_started", event)
    assert harness.emulator.request_count("CreateAttendee") == 4
    assert len(harness.sleeps) == 3
    assert harness.aws.call_items() == []  # claim released: the redelivered event starts afresh
    client.lambda_.invoke("on_meeting_started", event)
    assert len(harness.aws.receive_all()) == 1


def test_meeting_ended_requests_hangup_and_deletes_attendee(
    client: Client, harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    meeting_id = harness.create_meeting()
    _start(client, harness, meeting_id)
    plane = harness.plane()
    call_id = f"{meeting_id}:vc1"
    plane.calls.claim_for_dialing(call_id, "w1", 60)
    client.lambda_.invoke("on_meeting_ended", meeting_event(MEETING_ENDED, meeting_id, _ms(harness) + 10))
    record = plane.calls.get(call_id)
    assert record is not None
    assert (record.desired, record.hangup_reason) == ("ended", "meeting_ended")
    assert harness.emulator.request_count("DeleteAttendee") == 1
    hangups = _metric_lines(capsys.readouterr().out, "HangupsRequested")
    assert any(b.get("reason") == "meeting_ended" for b in hangups)
    client.lambda_.invoke("on_meeting_ended", meeting_event(MEETING_ENDED, meeting_id, _ms(harness) + 10))
    assert plane.calls.heartbeat(call_id, "w1", 60) == "ended"


def test_meeting_ended_ends_queued_call_at_once(client: Client, harness: Harness) -> None:
    meeting_id = harness.create_meeting()
    _start(client, harness, meeting_id)
    harness.emulator.store.end_meeting(meeting_id)
    client.lambda_.invoke("on_meeting_ended", meeting_event(MEETING_ENDED, meeting_id, _ms(harness) + 10))
    record = harness.plane().calls.get(f"{meeting_id}:vc1")
    assert record is not None
    assert (record.state, record.end_reason) == ("ended", "meeting_ended")
    assert harness.plane().calls.claim_for_dialing(record.call_id, "w1", 60) is None


def test_our_attendee_events_are_recorded_on_the_call(client: Client, harness: Harness) -> None:
    meeting_id = harness.create_meeting()
    _start(client, harness, meeting_id)
    plane = harness.plane()
    call = plane.calls.get(f"{meeting_id}:vc1")
    assert call is not None
    assert call.attendee_id is not None
    assert call.external_user_id is not None
    for event_type, offset, expected in (
        (ATTENDEE_JOINED, 10, "joined"),
        (ATTENDEE_DROPPED, 20, "dropped"),
        (ATTENDEE_LEFT, 15, "dropped"),  # older than the drop: ignored
        (ATTENDEE_DELETED, 30, "deleted"),
    ):
        client.lambda_.invoke(
            "on_attendee_event",
            meeting_event(
                event_type,
                meeting_id,
                _ms(harness) + offset,
                attendee_id=call.attendee_id,
                external_user_id=call.external_user_id,
            ),
        )
        after = plane.calls.get(call.call_id)
        assert after is not None
        assert after.attendee_status == expected
    final = plane.calls.get(call.call_id)
    assert final is not None
    assert (final.desired, final.hangup_reason) == ("ended", "attendee_deleted")
    meeting = plane.meeting_records.get(meeting_id)
    assert meeting is None or not meeting.humans  # our attendee never counts as a human
