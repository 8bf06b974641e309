"""A call's media side: its RTP/RTCP socket pair, SRTP session, media app and the SDP we last sent.

Nothing here runs per packet beyond what :mod:`media_worker.net.media_engine` already does; this object only
acts on negotiation (answer, re-offer) and on the session's rare events (inactivity, DTMF).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .audio import codec_by_name
from .call_plan import CallPlan
from .media_apps import MediaApp, RecordApp, build_media_app
from .negotiation import FailureReason, MediaParams, NegotiationFailed, answer_offer
from .net.media_engine import MediaEngine, MediaLeg, MediaStats, PortAllocator
from .rtp import MediaInactive, MediaResumed, MediaSession, SrtpContext
from .rtp.events import DtmfReceived, MediaEvent, RemoteByeReceived
from .sdp import SessionDescription

__all__ = ["CallMedia"]

logger = logging.getLogger(__name__)


def _same_stream(old: MediaParams, new: MediaParams) -> bool:
    """Only address or direction changed: the SRTP contexts and counters stay (RFC 4568 §7.1.4)."""
    return (
        old.suite == new.suite
        and old.local_key_salt == new.local_key_salt
        and old.remote_key_salt == new.remote_key_salt
        and old.payload_type == new.payload_type
        and old.clock_rate == new.clock_rate
        and old.telephone_event_pt == new.telephone_event_pt
    )


class CallMedia:
    """Media state of one call; the engine owns the clock, this owns the negotiation results."""

    def __init__(
        self,
        leg: MediaLeg,
        app: MediaApp,
        engine: MediaEngine,
        media_timeout_s: float,
        urandom: Callable[[int], bytes],
    ) -> None:
        self.leg = leg
        self.app = app
        self.params: MediaParams | None = None
        self.local_sdp: SessionDescription | None = None
        self.local_ip = ""
        self.inactive = False
        self.on_inactive: Callable[[], None] = lambda: None
        self._engine = engine
        self._media_timeout_s = media_timeout_s
        self._urandom = urandom
        self._earlier: MediaStats | None = None
        """Totals of sessions replaced by a re-key."""
        self._added = False
        self._closed = False
        leg.on_event = self._on_event

    @classmethod
    def open(
        cls,
        plan: CallPlan,
        engine: MediaEngine,
        ports: PortAllocator,
        media_timeout_s: float,
        urandom: Callable[[int], bytes],
        load_audio: Callable[[str], bytes],
    ) -> CallMedia:
        """Build the media app, then take a port pair (NoFreePortsError when the range is exhausted)."""
        app = build_media_app(plan.media_app, plan.media_options, load_audio=load_audio)
        return cls(MediaLeg(*ports.open_pair()), app, engine, media_timeout_s, urandom)

    @property
    def packets_received(self) -> int:
        session = self.leg.session
        return session.counters.packets_received if session else 0

    def start(self, params: MediaParams) -> None:
        """Run media with freshly negotiated parameters (a new SRTP session)."""
        codec = codec_by_name(params.codec)
        if codec is None:  # the plan only offers playable codecs; a peer answering another one broke RFC 3264
            raise NegotiationFailed(
                FailureReason.NO_COMMON_CODEC, f"answered codec {params.codec} not offered"
            )
        if self.leg.session is not None:
            self._earlier = self.stats()  # this session's counts join the earlier ones
        session = MediaSession(
            srtp=SrtpContext(params.suite, params.local_key_salt, params.remote_key_salt),
            payload_type=params.payload_type,
            now=self._engine_time(),
            clock_rate=params.clock_rate,
            telephone_event_payload_type=params.telephone_event_pt,
            inactivity_timeout=self._media_timeout_s,
            urandom=self._urandom,
        )
        self.leg.start(params, session, codec, self.app)
        self.params = params
        self.inactive = False
        if not self._added:
            self._engine.add(self.leg)
            self._added = True

    def answer_reoffer(self, offer: str, plan: CallPlan) -> bytes:
        """Our answer to a re-INVITE/UPDATE offer; media follows it (hold, resume, move, re-key)."""
        current = self.params
        answer, params = answer_offer(
            offer,
            local_address=self.local_ip,
            rtp_port=self.leg.rtp_port,
            codecs=plan.codecs,
            suites=plan.suites,
            urandom=self._urandom,
            previous=self.local_sdp,
            current=current,
        )
        if current is not None and _same_stream(current, params):
            self.leg.update(params)
            self.params = params
        else:
            self.start(params)
        self.local_sdp = SessionDescription.parse(answer)
        return answer.encode()

    def send_dtmf(self, digits: str) -> bool:
        """Queue RFC 4733 digits; False when the peer did not accept telephone-event."""
        session, params = self.leg.session, self.params
        if session is None or params is None or params.telephone_event_pt is None:
            return False
        for digit in digits:
            session.send_dtmf(digit)
        return True

    def stats(self) -> MediaStats:
        current = self.leg.stats()
        return current if self._earlier is None else current.after(self._earlier)

    def close(self) -> tuple[MediaStats, bytes | None]:
        """Stop the media (RTCP BYE when it ran), close the sockets; return totals and any recording."""
        stats = self.stats()
        if not self._closed:
            self._closed = True
            if self._added:
                self._engine.remove(self.leg)
            else:
                self.leg.close(0.0)
        recording = self.app.recording() if isinstance(self.app, RecordApp) else None
        return stats, recording

    def _engine_time(self) -> float:
        return asyncio.get_running_loop().time()  # the clock the media engine runs on

    def _on_event(self, event: MediaEvent) -> None:
        if isinstance(event, MediaInactive):
            self.inactive = True
            self.on_inactive()
        elif isinstance(event, MediaResumed):
            self.inactive = False
        elif isinstance(event, DtmfReceived):
            logger.info("DTMF %s received", event.digit)
        elif isinstance(event, RemoteByeReceived):
            logger.info("peer sent RTCP BYE: %s", event.reason)
