"""Two media legs on loopback, paced by the shared clock: tones cross SRTP both ways and are detected."""

from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest

from media_worker.audio import PCMU, tone_level
from media_worker.media_apps import MediaApp, RecordApp, SilenceApp, ToneApp
from media_worker.negotiation import MediaParams
from media_worker.net.media_engine import MediaEngine, MediaLeg, NoFreePortsError, PortAllocator
from media_worker.rtp import MediaSession, SrtpContext
from media_worker.sdp import Direction

pytestmark = pytest.mark.loopback

SUITE = "AES_CM_128_HMAC_SHA1_80"


def _params(remote_port: int, tx: bytes, rx: bytes, direction: Direction) -> MediaParams:
    return MediaParams(
        remote_rtp=("127.0.0.1", remote_port),
        remote_rtcp=("127.0.0.1", remote_port + 1),
        codec="PCMU",
        payload_type=0,
        clock_rate=8000,
        telephone_event_pt=None,
        ptime_ms=20,
        direction=direction,
        suite=SUITE,
        crypto_tag=1,
        local_key_salt=tx,
        remote_key_salt=rx,
    )


class _RecordUntil(RecordApp):
    def __init__(self, frames: int, done: asyncio.Event) -> None:
        super().__init__()
        self._want = frames
        self._done = done

    def on_audio(self, pcm: bytes) -> None:
        super().on_audio(pcm)
        if len(self.recording()) >= self._want * 320:
            self._done.set()


async def _exchange(
    direction_b: Direction, app_a: MediaApp | None = None
) -> tuple[_RecordUntil, MediaLeg, MediaLeg]:
    loop = asyncio.get_running_loop()
    ports = PortAllocator("127.0.0.1", 41000, 41999)
    leg_a = MediaLeg(*ports.open_pair())
    leg_b = MediaLeg(*ports.open_pair())
    key_a, key_b = os.urandom(30), os.urandom(30)
    done = asyncio.Event()
    recorder = _RecordUntil(100, done)
    now = loop.time()
    leg_a.start(
        _params(leg_b.rtp_port, key_a, key_b, Direction.SENDRECV),
        MediaSession(srtp=SrtpContext(SUITE, key_a, key_b), payload_type=0, now=now),
        PCMU,
        ToneApp(1000.0) if app_a is None else app_a,
    )
    leg_b.start(
        _params(leg_a.rtp_port, key_b, key_a, direction_b),
        MediaSession(srtp=SrtpContext(SUITE, key_b, key_a), payload_type=0, now=now),
        PCMU,
        recorder,
    )
    engine = MediaEngine()
    engine.add(leg_a)
    engine.add(leg_b)
    clock = asyncio.create_task(engine.run())
    try:
        await asyncio.wait_for(done.wait(), timeout=30)
    finally:
        engine.stop()
        await clock
        stats = (leg_a.stats(), leg_b.stats())
        engine.remove(leg_a)
        engine.remove(leg_b)
    assert stats[0].srtp_failures == 0
    assert stats[1].srtp_failures == 0
    return recorder, leg_a, leg_b


def test_tone_crosses_srtp_and_is_recorded() -> None:
    recorder, _, _ = asyncio.run(_exchange(Direction.SENDRECV))
    samples = np.frombuffer(recorder.recording(), dtype="<i2")
    assert tone_level(samples, 1000.0, 8000) > 0.5
    assert tone_level(samples, 2000.0, 8000) < 0.05


def test_a_silent_leg_sends_pcmu_silence_and_keeps_its_parameters() -> None:
    recorder, leg_a, _ = asyncio.run(_exchange(Direction.SENDRECV, SilenceApp()))
    samples = np.frombuffer(recorder.recording(), dtype="<i2")
    assert len(samples) >= 100 * 160
    assert not samples.any()  # PCMU 0xFF is linear zero
    assert leg_a.params is not None
    assert leg_a.params.codec == "PCMU"


def test_port_pairs_are_even_odd_and_exhaustion_is_reported() -> None:
    ports = PortAllocator("127.0.0.1", 42001, 42004)
    rtp, rtcp = ports.open_pair()
    try:
        assert rtp.getsockname()[1] % 2 == 0
        assert rtcp.getsockname()[1] == rtp.getsockname()[1] + 1
        with pytest.raises(NoFreePortsError, match="RTP port pair"):
            ports.open_pair()
    finally:
        rtp.close()
        rtcp.close()
