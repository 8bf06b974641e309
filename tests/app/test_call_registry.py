"""CallRegistry and MeetingRegistry against moto: every transition conditional, stale writers refused."""

from __future__ import annotations

import uuid

import pytest

from chalicelib.call_registry import CallRegistry, TransitionRejected
from chalicelib.call_states import TRANSITIONS
from chalicelib.contract import DialRequest, DialTarget
from chalicelib.meeting_registry import MeetingRegistry
from tests.app.conftest import TABLE, AwsResources, FakeClock

TARGET = DialTarget(name="vc1", host="abc.voiceconnector.chime.aws", from_number="+12065550100")


def _job(call_id: str, meeting_id: str, attendee_id: str, attempt: int = 1) -> DialRequest:
    return DialRequest.model_validate(
        {
            "call_id": call_id,
            "attempt": attempt,
            "meeting_id": meeting_id,
            "media_region": "us-east-1",
            "attendee_id": attendee_id,
            "join_token": "registry-test-token",
            "target": TARGET,
            "requested_at": "2024-05-01T12:00:00Z",
            "event_id": "e1",
        }
    )


def _queued_call(registry: CallRegistry, meeting_id: str | None = None) -> tuple[str, str]:
    """A claimed call with an attendee and job: ready for a worker. Returns (call_id, meeting_id)."""
    meeting_id = meeting_id or str(uuid.uuid4())
    claim = registry.claim(
        meeting_id,
        TARGET,
        grace_s=120,
        event_id="e1",
        media_region="us-east-1",
        external_meeting_id="sales-1",
    )
    assert claim.claim_id is not None
    call_id = f"{meeting_id}:vc1"
    attendee_id = str(uuid.uuid4())
    stored = registry.attach_attendee(
        call_id,
        claim.claim_id,
        attendee_id=attendee_id,
        external_user_id="dialout#vc1#x",
        job=_job(call_id, meeting_id, attendee_id),
    )
    assert stored is not None
    return call_id, meeting_id


@pytest.fixture
def registry(aws: AwsResources, clock: FakeClock) -> CallRegistry:
    return CallRegistry(aws.dynamodb, TABLE, clock=clock)


@pytest.fixture
def meetings(aws: AwsResources, clock: FakeClock) -> MeetingRegistry:
    return MeetingRegistry(aws.dynamodb, TABLE, clock=clock)


def test_claim_is_won_once(registry: CallRegistry) -> None:
    meeting_id = str(uuid.uuid4())
    results = [
        registry.claim(
            meeting_id,
            TARGET,
            grace_s=120,
            event_id=f"e{i}",
            media_region="us-east-1",
            external_meeting_id=None,
        )
        for i in range(3)
    ]
    assert [r.claim_id is not None for r in results] == [True, False, False]
    assert {r.refusal for r in results[1:]} == {"exists"}
    record = registry.get(f"{meeting_id}:vc1")
    assert record is not None
    assert (record.state, record.desired, record.attempts, record.attendee_id) == (
        "queued",
        "connected",
        1,
        None,
    )


def test_claim_refused_after_meeting_ended(registry: CallRegistry, meetings: MeetingRegistry) -> None:
    meeting_id = str(uuid.uuid4())
    assert meetings.mark_ended(meeting_id, 1_000, "end-event")
    assert not meetings.mark_ended(meeting_id, 2_000, "end-event-again")
    result = registry.claim(
        meeting_id, TARGET, grace_s=1, event_id="e", media_region="us-east-1", external_meeting_id=None
    )
    assert (result.claim_id, result.refusal) == (None, "meeting_ended")
    assert registry.get(f"{meeting_id}:vc1") is None


def test_attendee_attached_once_and_release_only_without_attendee(registry: CallRegistry) -> None:
    meeting_id = str(uuid.uuid4())
    claim = registry.claim(
        meeting_id, TARGET, grace_s=1, event_id="e", media_region="us-east-1", external_meeting_id=None
    )
    assert claim.claim_id is not None
    call_id = f"{meeting_id}:vc1"
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert registry.attach_attendee(
        call_id, claim.claim_id, attendee_id=first, external_user_id="u", job=_job(call_id, meeting_id, first)
    )
    assert (
        registry.attach_attendee(
            call_id,
            claim.claim_id,
            attendee_id=second,
            external_user_id="u",
            job=_job(call_id, meeting_id, second),
        )
        is None
    )
    assert (
        registry.attach_attendee(
            call_id,
            "other-claim",
            attendee_id=second,
            external_user_id="u",
            job=_job(call_id, meeting_id, second),
        )
        is None
    )
    assert not registry.release_claim(call_id, claim.claim_id)
    record = registry.get(call_id)
    assert record is not None
    assert record.attendee_id == first
    stored = record.dial_request()
    assert stored is not None
    assert stored.join_token.get_secret_value() == "registry-test-token"
    assert "registry-test-token" not in repr(record)


def test_worker_lifecycle(registry: CallRegistry, clock: FakeClock) -> None:
    call_id, _ = _queued_call(registry)
    assert registry.claim_for_dialing(call_id, "w1", 30, attempt=2) is None  # stale job
    claimed = registry.claim_for_dialing(call_id, "w1", 30, attempt=1)
    assert claimed is not None
    assert claimed.state == "dialing"
    assert claimed.lease_expires_at == clock.now + 30
    assert registry.claim_for_dialing(call_id, "w2", 30) is None  # duplicate message
    with pytest.raises(TransitionRejected):
        registry.mark_ringing(call_id, "w2")
    registry.mark_ringing(call_id, "w1")
    connected = registry.mark_connected(call_id, "w1", "sip-call-1")
    assert (connected.state, connected.sip_call_id) == ("connected", "sip-call-1")
    assert registry.heartbeat(call_id, "w1", 30) == "connected"
    assert registry.request_hangup(call_id, "humans_gone") is not None
    assert registry.request_hangup(call_id, "meeting_ended") is None  # first reason wins
    assert registry.heartbeat(call_id, "w1", 30) == "ended"
    registry.mark_ending(call_id, "w1")
    ended = registry.mark_ended(call_id, "w1", "humans_gone", 200, {"packets_sent": 10})
    assert (ended.state, ended.end_reason, ended.hangup_reason, ended.sip_status) == (
        "ended",
        "humans_gone",
        "humans_gone",
        200,
    )
    assert ended.media_stats == {"packets_sent": 10}
    with pytest.raises(TransitionRejected):
        registry.mark_ended(call_id, "w1", "again")
    with pytest.raises(TransitionRejected):
        registry.heartbeat(call_id, "w1", 30)


def test_backwards_transition_refused(registry: CallRegistry) -> None:
    call_id, _ = _queued_call(registry)
    registry.claim_for_dialing(call_id, "w1", 30)
    registry.mark_connected(call_id, "w1", "sip")
    with pytest.raises(TransitionRejected) as caught:
        registry.mark_ringing(call_id, "w1")
    assert caught.value.current is not None
    assert caught.value.current.state == "connected"
    assert "connected" not in TRANSITIONS["ringing"]  # table: target state -> allowed predecessors


def test_requeue_is_optimistic(registry: CallRegistry) -> None:
    call_id, _ = _queued_call(registry)
    seen = registry.claim_for_dialing(call_id, "w1", 30)
    assert seen is not None
    registry.heartbeat(call_id, "w1", 30)  # the worker is alive after all: the stale snapshot must lose
    assert registry.requeue(seen, None) is None
    fresh = registry.get(call_id)
    assert fresh is not None
    requeued = registry.requeue(fresh, None)
    assert requeued is not None
    assert (requeued.state, requeued.attempts, requeued.worker_id) == (
        "queued",
        2,
        None,
    )
    with pytest.raises(TransitionRejected):
        registry.heartbeat(call_id, "w1", 30)  # the old worker lost its lease


def test_restart_dialing_bounded(registry: CallRegistry) -> None:
    call_id, _ = _queued_call(registry)
    registry.claim_for_dialing(call_id, "w1", 30)
    registry.mark_connected(call_id, "w1", "sip")
    assert registry.restart_dialing(call_id, "w1", 30, max_attempts=2).attempts == 2
    with pytest.raises(TransitionRejected):
        registry.restart_dialing(call_id, "w1", 30, max_attempts=2)


def test_mark_failed_without_worker_only_when_unheld(registry: CallRegistry) -> None:
    call_id, _ = _queued_call(registry)
    registry.claim_for_dialing(call_id, "w1", 30)
    with pytest.raises(TransitionRejected):
        registry.mark_failed(call_id, "meeting_gone")
    failed = registry.mark_failed(call_id, "sip_403", worker_id="w1", sip_status=403)
    assert (failed.state, failed.end_reason, failed.sip_status) == ("failed", "sip_403", 403)


def test_terminal_records_get_a_ttl(registry: CallRegistry, aws: AwsResources, clock: FakeClock) -> None:
    call_id, _ = _queued_call(registry)
    registry.mark_failed(call_id, "meeting_gone")
    item = aws.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"CALL#{call_id}"}})["Item"]
    assert int(item["expires_at"]["N"]) == int(clock.now + 30 * 86_400)


def test_attendee_status_newest_event_wins(registry: CallRegistry) -> None:
    call_id, _ = _queued_call(registry)
    record = registry.get(call_id)
    assert record is not None
    assert record.attendee_id is not None
    assert registry.record_attendee_status(call_id, record.attendee_id, "joined", 7_000)
    assert not registry.record_attendee_status(call_id, record.attendee_id, "left", 5_000)
    assert not registry.record_attendee_status(call_id, str(uuid.uuid4()), "left", 9_000)
    after = registry.get(call_id)
    assert after is not None
    assert after.attendee_status == "joined"


def test_indexes_find_calls(registry: CallRegistry, meetings: MeetingRegistry, clock: FakeClock) -> None:
    call_id, meeting_id = _queued_call(registry)
    meetings.record_presence(meeting_id, str(uuid.uuid4()), True, 1_000)  # meeting item shares the index
    assert [c.call_id for c in registry.calls_for_meeting(meeting_id)] == [call_id]
    assert [c.call_id for c in registry.calls_in_state("queued")] == [call_id]
    assert list(registry.calls_in_state("queued", updated_before=clock.now)) == []
    assert [c.call_id for c in registry.calls_in_state("queued", updated_before=clock.now + 1)] == [call_id]


def test_presence_out_of_order(meetings: MeetingRegistry) -> None:
    meeting_id, human = str(uuid.uuid4()), str(uuid.uuid4())
    assert meetings.record_presence(meeting_id, human, True, 7_000).applied
    late_left = meetings.record_presence(meeting_id, human, False, 5_000)
    assert not late_left.applied
    assert late_left.meeting.present_humans == {human}
    assert late_left.meeting.last_human_left_ms is None
    gone = meetings.record_presence(meeting_id, human, False, 9_000)
    assert gone.meeting.present_humans == frozenset()
    assert gone.meeting.last_human_left_ms == 9_000
