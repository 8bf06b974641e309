"""Whole calls from the worker's Call to the Voice Connector emulator: audio, faults, hold, endings."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from emulator.vc_calls import CallState
from emulator.vc_faults import CallFault
from media_worker.audio import tone_level
from media_worker.outcomes import CallResult, EndReason

from .conftest import TOKEN, WAIT, harness

pytestmark = pytest.mark.loopback

WORKER_TONE_HZ = 600.0
EMULATOR_TONE_HZ = 1000.0


def level(pcm: bytes, frequency: float) -> float:
    return tone_level(np.frombuffer(pcm, dtype="<i2"), frequency, 8000)


def assert_token_free(result: CallResult) -> None:
    text = repr(result) + str(result.summary())
    assert TOKEN not in text
    assert "loop+back" not in text


def test_audio_crosses_both_ways_and_either_side_can_hang_up() -> None:
    async def scenario() -> None:
        async with harness() as h:
            talker = h.call(h.plan(media_app="tone", media_options={"frequency": WORKER_TONE_HZ}))
            talking = asyncio.create_task(talker.run())
            first = await h.emulator.wait_for_call(state=CallState.CONNECTED, timeout_s=WAIT)
            heard_by_emulator = await h.emulator.wait_for_recording(first.call_id, frames=50, timeout_s=WAIT)
            # The second call reuses the TLS connection and is ended by the emulator (BYE after 1 s).
            h.emulator.add_fault(CallFault(drop_after_s=1.0))
            listener = h.call(h.plan(media_app="record"))
            listened = await asyncio.wait_for(listener.run(), WAIT)
            talker.hangup(EndReason.MEETING_ENDED)
            talked = await asyncio.wait_for(talking, WAIT)
            assert len(h.pool.links) == 1
            ended_first = await h.emulator.wait_for_call(first.call_id, state=CallState.ENDED, timeout_s=WAIT)

        assert level(heard_by_emulator, WORKER_TONE_HZ) > 0.5
        assert talked.end_reason is EndReason.MEETING_ENDED
        assert talked.connected
        assert talked.sip_status == 200
        assert (talked.codec, talked.suite) == ("PCMU", "AES_CM_128_HMAC_SHA1_80")
        assert talked.media.packets_sent > 0
        assert talked.media.srtp_failures == 0
        assert ended_first.ended_by == "caller"
        assert listened.end_reason is EndReason.REMOTE_BYE
        assert listened.recording is not None
        assert level(listened.recording, EMULATOR_TONE_HZ) > 0.5
        assert listened.media.packets_received > 0
        assert listened.media.srtp_failures == 0
        assert {"dial_started", "answered", "first_media", "ended"} <= set(listened.timeline)
        assert listened.setup_latency_s is not None
        assert_token_free(talked)
        assert_token_free(listened)

    asyncio.run(scenario())


def test_ring_timeout_cancels_the_invite() -> None:
    async def scenario() -> None:
        async with harness() as h:
            h.emulator.add_fault(CallFault(answer_delay_s=60.0))
            result = await asyncio.wait_for(h.call(h.plan(ring_timeout_s=0.3)).run(), WAIT)
            record = await h.emulator.wait_for_call(state=CallState.CANCELLED, timeout_s=WAIT)
        assert result.end_reason is EndReason.RING_TIMEOUT
        assert not result.connected
        assert record.ended_by == "caller"
        assert "first_provisional" in result.timeline

    asyncio.run(scenario())


def test_busy_and_rejections_are_classified() -> None:
    async def scenario() -> list[CallResult]:
        async with harness() as h:
            h.emulator.add_fault(CallFault(reject=486))
            h.emulator.add_fault(CallFault(reject=403))
            h.emulator.add_fault(CallFault(reject=503))
            return [await asyncio.wait_for(h.call(h.plan()).run(), WAIT) for _ in range(3)]

    busy, rejected, unavailable = asyncio.run(scenario())
    assert (busy.end_reason, busy.sip_status) == (EndReason.BUSY, 486)
    assert (rejected.end_reason, rejected.sip_status) == (EndReason.REJECTED, 403)
    assert (unavailable.end_reason, unavailable.sip_status) == (EndReason.UNAVAILABLE, 503)


def test_answer_without_crypto_is_hung_up_never_plain_rtp() -> None:
    async def scenario() -> None:
        async with harness() as h:
            h.emulator.faults.answer_without_crypto()
            result = await asyncio.wait_for(h.call(h.plan()).run(), WAIT)
            record = await h.emulator.wait_for_call(state=CallState.ENDED, timeout_s=WAIT)
        assert result.end_reason is EndReason.NO_COMMON_CRYPTO
        assert result.sip_status == 200
        assert not result.connected
        assert result.media.packets_sent == 0
        assert record.ended_by == "caller"

    asyncio.run(scenario())


def test_hold_resume_and_update_refresh_keep_the_call() -> None:
    async def scenario() -> None:
        async with harness() as h:
            h.emulator.add_fault(CallFault(hold_resume_after_s=0.2, update_refresh_after_s=0.1))
            call = h.call(h.plan())
            running = asyncio.create_task(call.run())
            record = await h.emulator.wait_for_call(state=CallState.CONNECTED, timeout_s=WAIT)
            await h.emulator.wait_until(
                lambda: (
                    "answered:sendrecv" in record.history
                    and any(entry.startswith("session-refreshed") for entry in record.history)
                ),
                WAIT,
            )
            assert call.state == "connected"
            call.hangup(EndReason.HUMANS_GONE)
            result = await asyncio.wait_for(running, WAIT)
        history = record.history
        assert history.index("hold") < history.index("answered:sendonly") < history.index("resume")
        assert result.end_reason is EndReason.HUMANS_GONE
        assert result.media.srtp_failures == 0
        assert record.ended_by == "caller"

    asyncio.run(scenario())


def test_max_duration_ends_with_bye() -> None:
    async def scenario() -> None:
        async with harness() as h:
            result = await asyncio.wait_for(h.call(h.plan(max_duration_s=0.5)).run(), WAIT)
            record = await h.emulator.wait_for_call(state=CallState.ENDED, timeout_s=WAIT)
        assert result.end_reason is EndReason.MAX_DURATION
        assert result.connected
        assert result.duration_s > 0
        assert record.ended_by == "caller"

    asyncio.run(scenario())


def test_silent_peer_is_probed_and_kept() -> None:
    async def scenario() -> None:
        async with harness() as h:
            h.emulator.add_fault(CallFault(stop_media_after_s=0.0))
            probe_answers: asyncio.Queue[int] = asyncio.Queue()
            call = h.call(h.plan(), media_timeout_s=0.3, on_probe=probe_answers.put_nowait)
            running = asyncio.create_task(call.run())
            record = await h.emulator.wait_for_call(state=CallState.CONNECTED, timeout_s=WAIT)
            assert await asyncio.wait_for(probe_answers.get(), WAIT) == 200
            assert await asyncio.wait_for(probe_answers.get(), WAIT) == 200  # asked again: still silent
            assert call.state == "connected"
            call.hangup(EndReason.DRAINED)
            result = await asyncio.wait_for(running, WAIT)
        assert result.end_reason is EndReason.DRAINED
        assert record.ended_by == "caller"

    asyncio.run(scenario())


def test_wrong_certificate_name_is_a_tls_failure() -> None:
    async def scenario() -> CallResult:
        async with harness() as h:
            return await asyncio.wait_for(h.call(h.plan(host="other.localtest")).run(), WAIT)

    result = asyncio.run(scenario())
    assert result.end_reason is EndReason.TLS_FAILURE
    assert "certificate verification failed" in result.detail
