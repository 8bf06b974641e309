"""The service runs on uvloop when installed: a whole call must work on its transports too."""

from __future__ import annotations

import asyncio

import pytest

from emulator.vc_calls import CallState
from media_worker.outcomes import EndReason

from .conftest import WAIT, harness

uvloop = pytest.importorskip("uvloop")


def test_a_call_connects_and_ends_cleanly_on_uvloop() -> None:
    async def scenario() -> None:
        async with harness() as h:
            call = h.call(h.plan(media_app="record"))
            running = asyncio.create_task(call.run())
            record = await h.emulator.wait_for_call(state=CallState.CONNECTED, timeout_s=WAIT)
            await h.emulator.wait_for_recording(record.call_id, frames=10, timeout_s=WAIT)
            call.hangup(EndReason.MEETING_ENDED)
            result = await asyncio.wait_for(running, WAIT)
        assert result.connected
        assert result.end_reason is EndReason.MEETING_ENDED
        assert result.media.packets_received > 0
        assert result.media.srtp_failures == 0

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())
