"""The worker's Call (real SIP pool, real media engine) against baresip, on 127.0.0.1.

The media engine used here is the real one with a tally added: each SRTP failure is attributed to the
socket it arrived on (RTP or RTCP), and every RTCP datagram is kept, so a test can tell our media
failing from the peer sending something that is not SRTCP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from media_worker.call import Call
from media_worker.call_plan import CallPlan
from media_worker.net.media_engine import MediaEngine, MediaLeg, PortAllocator
from media_worker.net.sip_pool import SipConnectionPool
from media_worker.net.tls import client_context
from media_worker.outcomes import CallResult
from media_worker.rtp import MediaSession, is_rtcp

from .baresip_peer import BaresipPeer, RtpStats, available, baresip_uas

FROM_NUMBER = "+12065550100"
WORKER_RTP_PORTS = (41100, 41199)
CALL_TIMEOUT_S = 20.0


def _srtp_failures(session: MediaSession) -> int:
    counters = session.counters
    return counters.srtp_auth_failures + counters.srtp_replays + counters.srtp_malformed


def srtcp_shaped(datagram: bytes, suite: str) -> bool:
    """Whether the size fits RTCP protected with ``suite``: RTCP is whole 32-bit words, then the E flag and
    index (4 bytes) and the tag: 10 bytes for the HMAC-SHA1 suites (RFC 4568 §6.2.2 keeps SRTCP at 80 bits
    even for _32), 16 for GCM (RFC 7714 §9.1)."""
    if suite.startswith("AEAD_"):
        return len(datagram) >= 8 + 16 + 4 and len(datagram) % 4 == 0
    return len(datagram) >= 8 + 4 + 10 and len(datagram) % 4 == 2


@dataclass
class SrtpTally:
    """Every datagram the SRTP layer refused, split by kind."""

    rtp_refused: list[bytes] = field(default_factory=list)
    rtcp_refused: list[bytes] = field(default_factory=list)


_TALLIES: dict[int, SrtpTally] = {}
"""The tally of each live :class:`TallyingSession`, by ``id()`` (a session has slots, none to spare)."""


class TallyingSession(MediaSession):
    """The real session, whose every datagram its SRTP layer refuses is also kept. A test double: a live
    session is switched to this class (same slots), so the media path under test is otherwise the real one."""

    __slots__ = ()

    def receive_buffered(self, size: int, now: float) -> None:
        data = bytes(self.receive_buffer[:size])  # before SRTP works on the buffer in place
        before = _srtp_failures(self)
        super().receive_buffered(size, now)
        if _srtp_failures(self) > before:
            tally = _TALLIES[id(self)]
            (tally.rtcp_refused if is_rtcp(data) else tally.rtp_refused).append(data)


class TallyingEngine(MediaEngine):
    """The real media engine; each datagram the leg's SRTP layer refuses is kept."""

    def __init__(self) -> None:
        super().__init__()
        self.tally = SrtpTally()

    def add(self, leg: MediaLeg) -> None:
        session = leg.session
        assert session is not None  # the call adds its leg once media is negotiated
        session.__class__ = TallyingSession
        _TALLIES[id(session)] = self.tally
        super().add(leg)


@dataclass
class Placed:
    result: CallResult
    tally: SrtpTally
    peer_stats: RtpStats | None
    """What baresip printed when the call ended; None when it never got a call."""


def place_call(
    peer: BaresipPeer, ca_file: Path, *, suites: Sequence[str], max_duration_s: float = 2.0
) -> Placed:
    """One call with the ``record`` app (it sends silence, keeps what it hears), ended by max duration.

    baresip is stopped before the pool closes: it never answers TLS close_notify, and the TLS shutdown would
    otherwise wait for asyncio's shutdown timeout."""
    since = peer.mark()

    async def scenario() -> Placed:
        pool = SipConnectionPool(ssl_context=client_context(ca_file=ca_file), keepalive_s=None)
        engine = TallyingEngine()
        clock = asyncio.create_task(engine.run())
        plan = CallPlan.for_uri(
            peer.uri, FROM_NUMBER, suites=suites, media_app="record", max_duration_s=max_duration_s
        )
        call = Call(
            plan,
            pool=pool,
            engine=engine,
            ports=PortAllocator("127.0.0.1", *WORKER_RTP_PORTS),
            media_public_ip=None,
            media_timeout_s=30.0,
        )
        peer_stats = None
        try:
            result = await asyncio.wait_for(call.run(), CALL_TIMEOUT_S)
            if result.sip_status is not None:
                peer_stats = await asyncio.to_thread(peer.rtp_stats, since=since)
        finally:
            await asyncio.to_thread(peer.stop)
            await pool.close()
            engine.stop()
            await clock
        return Placed(result, engine.tally, peer_stats)

    return asyncio.run(scenario())


@pytest.fixture
def baresip(tmp_path: Path) -> Iterator[BaresipPeer]:
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    with baresip_uas(tmp_path) as peer:
        yield peer
