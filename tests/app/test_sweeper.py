"""The sweeper: expired leases re-dialed with attempt+1, bounded attempts, stuck queued calls repaired."""

from __future__ import annotations

import pytest
from chalice.test import Client

from chalicelib.control import handle_meeting_started
from chalicelib.events import MEETING_STARTED, parse_meeting_event
from chalicelib.job_queue import InMemoryJobQueue
from chalicelib.sweeper import redial_delay_s, sweep
from tests.app.conftest import Harness, meeting_event


@pytest.fixture
def jobs(harness: Harness) -> InMemoryJobQueue:
    harness.queue = InMemoryJobQueue()
    return harness.queue


def _started_call(harness: Harness, jobs: InMemoryJobQueue) -> str:
    meeting_id = harness.create_meeting()
    plane = harness.plane()
    event = parse_meeting_event(meeting_event(MEETING_STARTED, meeting_id, int(harness.clock.now * 1000)))
    handle_meeting_started(plane, event)
    jobs.jobs.clear()  # the first job
    return f"{meeting_id}:vc1"


def _keep_humans_present(harness: Harness, call_id: str) -> None:
    meeting_id = call_id.split(":")[0]
    harness.plane().meeting_records.record_presence(
        meeting_id, "11111111-2222-3333-4444-555555555555", True, 1
    )


def test_expired_lease_is_requeued_with_next_attempt(harness: Harness, jobs: InMemoryJobQueue) -> None:
    call_id = _started_call(harness, jobs)
    _keep_humans_present(harness, call_id)
    plane = harness.plane()
    plane.calls.claim_for_dialing(call_id, "w1", 30, attempt=1)
    plane.calls.mark_connected(call_id, "w1", "sip-1")
    harness.clock.advance(30 + 29)  # within LEASE_EXPIRED_GRACE_SECONDS
    assert sweep(plane).requeued == 0
    harness.clock.advance(2)
    assert sweep(plane).requeued == 1
    (queued,) = jobs.jobs
    assert queued.job.attempt == 2
    assert queued.attributes["attempt"]["StringValue"] == "2"
    assert queued.delay_s == 5
    record = plane.calls.get(call_id)
    assert record is not None
    assert (record.state, record.attempts, record.worker_id) == ("queued", 2, None)
    assert plane.calls.claim_for_dialing(call_id, "w2", 30, attempt=1) is None  # the old job is stale
    assert plane.calls.claim_for_dialing(call_id, "w2", 30, attempt=2) is not None


def test_exhausted_attempts_fail_the_call(harness: Harness, jobs: InMemoryJobQueue) -> None:
    call_id = _started_call(harness, jobs)
    _keep_humans_present(harness, call_id)
    plane = harness.plane()
    for attempt in range(1, 6):
        assert plane.calls.claim_for_dialing(call_id, f"w{attempt}", 30, attempt=attempt) is not None
        harness.clock.advance(120)
        sweep(plane)
    record = plane.calls.get(call_id)
    assert record is not None
    assert (record.state, record.end_reason, record.attempts) == ("failed", "attempts_exhausted", 5)
    assert [q.job.attempt for q in jobs.jobs] == [2, 3, 4, 5]


def test_stuck_queued_call_is_re_enqueued(harness: Harness, jobs: InMemoryJobQueue) -> None:
    call_id = _started_call(harness, jobs)
    _keep_humans_present(harness, call_id)
    plane = harness.plane()
    harness.clock.advance(60)
    assert sweep(plane).requeued == 0
    harness.clock.advance(61)
    assert sweep(plane).requeued == 1
    (queued,) = jobs.jobs
    assert queued.job.attempt == 2


def test_claim_without_attendee_is_completed(harness: Harness, jobs: InMemoryJobQueue) -> None:
    meeting_id = harness.create_meeting()
    plane = harness.plane()
    event = parse_meeting_event(meeting_event(MEETING_STARTED, meeting_id, int(harness.clock.now * 1000)))
    target = plane.settings.require_dial_plan().rules[0].targets[0]
    # A crash right after the claim: no attendee, no job.
    plane.calls.claim(
        meeting_id,
        target.dial_target,
        grace_s=120,
        event_id=event.event_id,
        media_region="us-east-1",
        external_meeting_id="sales-42",
    )
    _keep_humans_present(harness, f"{meeting_id}:vc1")
    harness.clock.advance(121)
    assert sweep(plane).requeued == 1
    (queued,) = jobs.jobs
    job = queued.job
    assert job.attempt == 1
    assert harness.emulator.is_token_valid(job.join_token.get_secret_value()) == (meeting_id, job.attendee_id)


def test_unheld_call_wanted_ended_is_finished(harness: Harness, jobs: InMemoryJobQueue) -> None:
    call_id = _started_call(harness, jobs)
    plane = harness.plane()
    plane.calls.claim_for_dialing(call_id, "w1", 30)
    plane.calls.request_hangup(call_id, "meeting_ended")
    harness.clock.advance(120)
    assert sweep(plane).finished == 1
    record = plane.calls.get(call_id)
    assert record is not None
    assert (record.state, record.end_reason) == ("ended", "meeting_ended")
    assert jobs.jobs == []


def test_redial_delay_is_bounded() -> None:
    assert [redial_delay_s(a) for a in range(1, 8)] == [0, 5, 10, 20, 40, 60, 60]


def test_sweep_calls_handler_counts_runs(client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    client.lambda_.invoke(
        "sweep_calls", client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])
    )
    out = capsys.readouterr().out
    assert '"SweeperRuns":[1.0]' in out
