"""The supervisor against moto SQS + DynamoDB with scripted calls and a virtual clock."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from functools import partial

import pytest

from media_worker.outcomes import EndReason
from media_worker.supervisor import Supervisor
from tests.worker.supervisor.conftest import JOIN_TOKEN, World
from tests.worker.supervisor.fake_calls import SAFETY_TIMEOUT_S, Script


def run_with(world: World, scenario: Callable[[Supervisor], Awaitable[None]], **config: object) -> Supervisor:
    """Start ``run()``, play the scenario, then drain and require ``run()`` to return."""
    supervisor = world.supervisor(**config)

    async def main() -> None:
        running = asyncio.create_task(supervisor.run())
        try:
            await scenario(supervisor)
        finally:
            supervisor.drain()
            await asyncio.wait_for(running, SAFETY_TIMEOUT_S)

    asyncio.run(main())
    return supervisor


def latest_call_connected(world: World, number: int) -> bool:
    calls = world.factory.calls
    return len(calls) == number and calls[-1].state == "connected"


def sleep_requested(world: World, seconds: float) -> bool:
    return seconds in world.time.requested


# -- capacity -----------------------------------------------------------------------------------------------


def test_never_more_than_max_calls_and_no_receive_while_full(world: World) -> None:
    for job in [world.new_job() for _ in range(3)]:
        world.send(job)

    async def scenario(supervisor: Supervisor) -> None:
        await world.watch.until(lambda: world.watched_sqs.count("delete_message") == 2)  # both connected
        receives = supervisor.receives
        for _ in range(50):
            await asyncio.sleep(0)
        assert supervisor.receives == receives
        assert world.queue_counts() == (1, 0)  # the third job still waits on the queue
        assert not supervisor.is_ready()
        world.factory.connected()[0].drop(EndReason.MAX_DURATION)
        await world.watch.until(lambda: len(world.factory.calls) == 3 and len(world.factory.connected()) == 2)

    run_with(world, scenario, max_calls=2)
    assert world.factory.peak == 2
    asked = [kw["MaxNumberOfMessages"] for name, kw in world.watched_sqs.calls if name == "receive_message"]
    assert asked
    assert max(asked) <= 2


# -- claims, duplicates and message lifetime ----------------------------------------------------------------


def test_duplicate_delivery_of_the_same_job_makes_one_call(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    job = world.new_job()
    world.send(job)
    world.send(job)

    async def scenario(supervisor: Supervisor) -> None:
        await world.watch.until(lambda: len(world.factory.connected()) == 1)
        await world.time.advance(1.0)  # both copies go to one host: the second waits for its dial slot
        await world.watch.until(lambda: world.watched_sqs.count("delete_message") == 2)

    run_with(world, scenario)
    assert len(world.factory.calls) == 1
    assert world.queue_counts() == (0, 0)
    assert "duplicate or stale dial job deleted" in world.logs.getvalue()
    rejected = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "JobsRejected" in line]
    assert any(blob.get("reason") == "duplicate" for blob in rejected)


def test_message_is_deleted_only_after_the_call_is_connected_and_recorded(world: World) -> None:
    job = world.new_job()
    world.send(job)
    world.factory.default = Script(wait_for_answer=True)
    state_at_delete: list[str] = []
    world.watched_sqs.before["delete_message"] = lambda _: state_at_delete.append(
        world.record(job.call_id).state
    )

    async def scenario(supervisor: Supervisor) -> None:
        await world.watch.until(lambda: world.record(job.call_id).state == "ringing")
        assert world.queue_counts() == (0, 1)
        await world.time.advance(15.0)  # half the visibility timeout: the message is kept invisible
        await world.watch.until(lambda: world.watched_sqs.count("change_message_visibility") == 1)
        assert world.watched_sqs.count("delete_message") == 0
        world.factory.calls[0].answer()
        await world.watch.until(lambda: world.watched_sqs.count("delete_message") == 1)

    run_with(world, scenario)
    assert state_at_delete == ["connected"]
    extended = [kw for name, kw in world.watched_sqs.calls if name == "change_message_visibility"]
    assert extended[0]["VisibilityTimeout"] == 30


def test_a_call_that_fails_is_recorded_failed_and_its_message_deleted(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    job = world.new_job()
    world.send(job)
    world.factory.default = Script(fail_with=EndReason.BUSY, sip_status=486)

    async def scenario(supervisor: Supervisor) -> None:
        await world.watch.until(lambda: world.watched_sqs.count("delete_message") == 1)

    run_with(world, scenario)
    record = world.record(job.call_id)
    assert (record.state, record.end_reason, record.sip_status) == ("failed", "busy", 486)
    assert len(world.factory.calls) == 1  # a refusal is not re-dialed
    failed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "CallsFailed" in line]
    assert any(blob.get("reason") == "busy" for blob in failed)


def test_invalid_job_is_deleted_counted_and_logged_without_its_content(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.send(
        json.dumps({"version": 1, "call_id": "x", "meeting_id": "not-a-guid", "join_token": JOIN_TOKEN})
    )
    world.send("not json at all " + JOIN_TOKEN)

    async def scenario(supervisor: Supervisor) -> None:
        await world.watch.until(lambda: world.watched_sqs.count("delete_message") == 2)

    run_with(world, scenario)
    assert world.factory.calls == []
    logs = world.logs.getvalue()
    assert logs.count("invalid dial job deleted") == 2
    assert "meeting_id" in logs  # the error names the field ...
    out = capsys.readouterr().out
    assert JOIN_TOKEN not in logs + out  # ... never the values
    rejected = [json.loads(line) for line in out.splitlines() if "JobsRejected" in line]
    assert [blob["reason"] for blob in rejected if "reason" in blob] == ["invalid", "invalid"]


# -- heartbeat, desired state, lease ------------------------------------------------------------------------


def test_heartbeat_reads_desired_ended_and_hangs_up_with_the_records_reason(world: World) -> None:
    job = world.new_job()
    world.send(job)

    async def scenario(supervisor: Supervisor) -> None:
        await world.watch.until(lambda: world.record(job.call_id).state == "connected")
        assert world.quiet_registry.request_hangup(job.call_id, "humans_gone") is not None
        await world.time.advance(world.config.heartbeat_s)
        await world.watch.until(lambda: world.factory.calls[0].hangups == [EndReason.HUMANS_GONE])
        await world.watch.until(lambda: world.record(job.call_id).state == "ended")

    run_with(world, scenario)
    record = world.record(job.call_id)
    assert (record.end_reason, record.sip_status) == ("humans_gone", 200)
    assert record.media_stats is not None
    assert record.media_stats["packets_received"] == 498
    assert '"message":"call finished"' in world.logs.getvalue()


def test_a_lost_lease_hangs_up_without_writing_the_record(world: World) -> None:
    job = world.new_job()
    world.send(job)

    async def scenario(supervisor: Supervisor) -> None:
        await world.watch.until(lambda: world.record(job.call_id).state == "connected")
        # Another worker took the call over (e.g. after a network partition outlived our lease).
        world.watched_dynamodb.quiet().update_item(
            TableName="dialout-calls",
            Key={"pk": {"S": "CALL#" + job.call_id}},
            UpdateExpression="SET worker_id = :w",
            ExpressionAttributeValues={":w": {"S": "worker-b"}},
        )
        await world.time.advance(world.config.heartbeat_s)
        await world.watch.until(lambda: world.factory.calls[0].finished)

    run_with(world, scenario)
    assert world.factory.calls[0].hangups == [EndReason.LOCAL_HANGUP]
    record = world.record(job.call_id)
    assert (record.state, record.worker_id) == ("connected", "worker-b")


# -- re-dial ------------------------------------------------------------------------------------------------


def test_a_dropped_leg_is_redialed_with_backoff_until_the_bound(world: World) -> None:
    job = world.new_job()
    world.send(job)

    async def scenario(supervisor: Supervisor) -> None:
        for number, backoff in ((1, 1.0), (2, 2.0)):
            await world.watch.until(partial(latest_call_connected, world, number))
            await world.watch.until(lambda: world.record(job.call_id).state == "connected")
            world.factory.calls[-1].drop(EndReason.REMOTE_BYE)
            await world.watch.until(partial(sleep_requested, world, backoff))
            assert len(world.factory.calls) == number
            await world.time.advance(backoff)
        await world.watch.until(lambda: len(world.factory.connected()) == 1 and len(world.factory.calls) == 3)
        assert world.record(job.call_id).attempts == 3
        world.factory.calls[-1].drop(EndReason.CONNECTION_LOST)
        await world.watch.until(lambda: world.record(job.call_id).state == "ended")

    run_with(world, scenario, max_redials=2)
    assert len(world.factory.calls) == 3
    record = world.record(job.call_id)
    assert (record.end_reason, record.attempts) == ("connection_lost", 3)
    backoffs = [s for s in world.time.requested if s not in (world.config.heartbeat_s, 15.0)]
    assert backoffs == [1.0, 2.0]


def test_no_redial_once_the_record_no_longer_wants_the_call(world: World) -> None:
    job = world.new_job()
    world.send(job)

    async def scenario(supervisor: Supervisor) -> None:
        await world.watch.until(lambda: world.record(job.call_id).state == "connected")
        world.factory.calls[0].drop(EndReason.REMOTE_BYE)  # the meeting ended: the connector said BYE first
        assert world.quiet_registry.request_hangup(job.call_id, "meeting_ended") is not None
        await world.watch.until(lambda: 1.0 in world.time.requested)
        await world.time.advance(1.0)
        await world.watch.until(lambda: world.record(job.call_id).state == "ended")

    run_with(world, scenario)
    assert len(world.factory.calls) == 1
    assert world.record(job.call_id).end_reason == "remote_bye"


# -- pacing -------------------------------------------------------------------------------------------------


def test_dials_to_one_host_are_paced_by_calls_per_second(world: World) -> None:
    first, second, elsewhere = (
        world.new_job(host="vc.a.test"),
        world.new_job(host="vc.a.test"),
        world.new_job(),
    )
    for job in (first, second, elsewhere):
        world.send(job)

    async def scenario(supervisor: Supervisor) -> None:
        await world.watch.until(lambda: len(world.factory.connected()) == 2)
        await world.watch.until(lambda: 0.5 in world.time.requested)
        assert {c.job.target.host for c in world.factory.calls} == {"vc.a.test", elsewhere.target.host}
        await world.time.advance(0.5)
        await world.watch.until(lambda: len(world.factory.connected()) == 3)

    run_with(world, scenario, calls_per_second=2.0)


# -- drain --------------------------------------------------------------------------------------------------


def test_drain_hangs_up_every_call_releases_unstarted_jobs_and_returns(world: World) -> None:
    held_a, held_b = world.new_job(host="vc.a.test"), world.new_job(host="vc.b.test")
    waiting = world.new_job(host="vc.a.test")
    world.send(held_a)
    world.send(held_b)
    supervisor = world.supervisor()

    async def main() -> None:
        running = asyncio.create_task(supervisor.run())
        await world.watch.until(lambda: len(world.factory.connected()) == 2)
        await world.watch.until(lambda: world.watched_sqs.count("delete_message") == 2)
        world.send(waiting)
        await world.watch.until(lambda: 1.0 in world.time.requested)  # paced behind held_a
        supervisor.drain()
        await asyncio.wait_for(running, SAFETY_TIMEOUT_S)

    asyncio.run(main())
    assert [c.hangups for c in world.factory.calls] == [[EndReason.DRAINED], [EndReason.DRAINED]]
    assert world.queue_counts() == (1, 0)  # the unstarted job is visible again for another worker
    assert world.record(waiting.call_id).state == "queued"
    for job in (held_a, held_b):
        record = world.record(job.call_id)
        # Given back: the lease is expired now, so the sweeper re-dials it from another worker.
        assert record.state == "connected"
        assert record.lease_expires_at is not None
        assert record.lease_expires_at <= time.time()


def test_drain_returns_within_its_timeout_when_a_call_never_ends(world: World) -> None:
    world.send(world.new_job())
    world.factory.default = Script(ignore_hangup=True)

    async def scenario(supervisor: Supervisor) -> None:
        await world.watch.until(lambda: len(world.factory.connected()) == 1)

    run_with(world, scenario, drain_timeout_s=0.05)
    call = world.factory.calls[0]
    assert call.hangups == [EndReason.DRAINED]
    assert call.finished  # cancelled at the drain deadline


def test_drain_between_a_drop_and_its_redial_gives_the_call_back(world: World) -> None:
    job = world.new_job()
    world.send(job)

    async def scenario(supervisor: Supervisor) -> None:
        await world.watch.until(lambda: world.record(job.call_id).state == "connected")
        world.factory.calls[0].drop(EndReason.CONNECTION_LOST)
        await world.watch.until(lambda: 1.0 in world.time.requested)  # waiting out the re-dial backoff

    run_with(world, scenario)
    assert len(world.factory.calls) == 1
    record = world.record(job.call_id)
    assert (record.state, record.end_reason) == ("connected", None)
    assert record.lease_expires_at is not None
    assert record.lease_expires_at <= time.time()
