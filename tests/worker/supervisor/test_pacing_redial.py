"""Dial pacing per host (token bucket on a virtual clock) and the re-dial policy."""

from __future__ import annotations

import asyncio

import pytest

from media_worker.dial_pacer import DialPacer
from media_worker.outcomes import EndReason
from media_worker.redial import RedialPolicy
from tests.worker.supervisor.fake_calls import FakeTime


def test_the_nth_dial_to_one_host_waits_n_minus_one_intervals() -> None:
    clock = FakeTime()
    pacer = DialPacer(2.0, clock=clock)
    assert [pacer.reserve("vc.a") for _ in range(4)] == [0.0, 0.5, 1.0, 1.5]
    assert pacer.reserve("vc.b") == 0.0  # hosts are paced independently
    clock.now += 10.0
    assert pacer.reserve("vc.a") == 0.0  # idle long enough: no credit carried, no wait either


def test_a_burst_allows_that_many_dials_at_once() -> None:
    clock = FakeTime()
    pacer = DialPacer(1.0, clock=clock, burst=2)
    assert [pacer.reserve("vc.a") for _ in range(3)] == [0.0, 0.0, 1.0]


def test_wait_sleeps_for_the_reserved_slot() -> None:
    clock = FakeTime()
    pacer = DialPacer(4.0, clock=clock, sleep=clock.sleep)

    async def main() -> None:
        assert await pacer.wait("vc.a") == 0.0
        second = asyncio.create_task(pacer.wait("vc.a"))
        await asyncio.sleep(0)
        assert not second.done()
        await clock.advance(0.25)
        assert await second == 0.25

    asyncio.run(main())
    assert clock.requested == [0.25]


@pytest.mark.parametrize(("cps", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_pacer_refuses_nonsense(cps: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        DialPacer(cps, clock=FakeTime(), burst=burst)


def test_redial_only_for_lost_legs_and_within_the_bound() -> None:
    policy = RedialPolicy(2)
    assert policy.should_redial(EndReason.REMOTE_BYE, connected=True, redials_done=0)
    assert policy.should_redial(EndReason.MEDIA_TIMEOUT, connected=True, redials_done=1)
    assert not policy.should_redial(EndReason.REMOTE_BYE, connected=True, redials_done=2)
    assert not policy.should_redial(EndReason.MAX_DURATION, connected=True, redials_done=0)
    assert not policy.should_redial(EndReason.BUSY, connected=False, redials_done=0)
    # A first dial that never connected is not re-dialed; a re-dial that cannot connect yet is.
    assert not policy.should_redial(EndReason.CONNECT_FAILED, connected=False, redials_done=0)
    assert policy.should_redial(EndReason.CONNECT_FAILED, connected=False, redials_done=1)
    assert not policy.should_redial(EndReason.REJECTED, connected=False, redials_done=1)


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    top = RedialPolicy(10, base_s=1.0, cap_s=8.0, jitter=lambda: 1.0)
    assert [top.backoff_s(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    bottom = RedialPolicy(10, base_s=1.0, cap_s=8.0, jitter=lambda: 0.0)
    assert [bottom.backoff_s(n) for n in range(1, 4)] == [0.5, 1.0, 2.0]
    with pytest.raises(ValueError, match="start at 1"):
        top.backoff_s(0)
