"""One outbound call's life: dial, ring, negotiate SRTP, hold the media up, end, and say how it ended.

A call owns a queue of SIP events (routed by the shared :class:`SipLink`) and reacts to them; everything
it does locally (hang up, max duration, a media-inactivity probe) is a synchronous SIP verb whose consequence
comes back through that queue, so :meth:`Call.run` ends exactly when the SIP core says the call is over.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any

from .call_media import CallMedia
from .call_plan import CallPlan
from .media_apps import MediaAppError
from .negotiation import NegotiationFailed, Offer, build_offer, process_answer
from .net.media_engine import MediaEngine, PortAllocator
from .net.sip_pool import SipConnectFailed, SipConnectionPool
from .net.sip_transport import SipLink
from .outcomes import (
    FAILURE_REASONS,
    NEGOTIATION_REASONS,
    TERMINATION_REASONS,
    CallResult,
    EndReason,
)
from .sip import (
    CallAnswered,
    CallFailed,
    CallProgressed,
    DialogTerminated,
    FailureCategory,
    LocalProtocolError,
    MessageRejected,
    OfferReceived,
    Party,
    RequestCompleted,
    SessionRefreshed,
    SipEvent,
    TerminationReason,
)

__all__ = ["Call"]

logger = logging.getLogger(__name__)

# RFC 5057 §5.1: only these answers to an in-dialog request say the dialog is gone.
_DIALOG_DEAD = frozenset({408, 481})


def _no_audio(source: str) -> bytes:
    raise MediaAppError("no audio loader configured for the announce app")


def _ignore_state(state: str) -> None:
    return None


class Call:
    """One outbound call. ``run()`` dials and returns a :class:`CallResult`; ``hangup()`` ends it."""

    def __init__(
        self,
        plan: CallPlan,
        *,
        pool: SipConnectionPool,
        engine: MediaEngine,
        ports: PortAllocator,
        media_public_ip: str | None,
        media_timeout_s: float,
        on_state: Callable[[str], None] = _ignore_state,
        on_probe: Callable[[int], None] | None = None,
        urandom: Callable[[int], bytes] = secrets.token_bytes,
        load_audio: Callable[[str], bytes] = _no_audio,
    ) -> None:
        self.plan = plan
        self.state = "dialing"
        self._pool = pool
        self._engine = engine
        self._ports = ports
        self._media_public_ip = media_public_ip
        self._media_timeout_s = media_timeout_s
        self._on_state = on_state
        self._on_probe = on_probe
        self._urandom = urandom
        self._load_audio = load_audio
        self._loop: asyncio.AbstractEventLoop | None = None
        self._link: SipLink | None = None
        self._media: CallMedia | None = None
        self._offer: Offer | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._probe_id: int | None = None
        self._done = False
        self.sip_call_id: str | None = None
        self.end_reason: EndReason | None = None
        self.sip_status: int | None = None
        self.detail = ""
        self.timeline: dict[str, float] = {}
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"Call({self.plan.label!r}, state={self.state!r})"

    async def _prefetch_announcement(self) -> None:
        # Reading a WAV file or an S3 object blocks; do it in a thread so the shared media clock never
        # stalls. The loader caches, so building the media app right after is a memory lookup.
        source = self.plan.media_options.get("source")
        if self.plan.media_app == "announce" and isinstance(source, str):
            await asyncio.to_thread(self._load_audio, source)

    # -- public --

    async def run(self) -> CallResult:
        """Dial and hold the call until it ends. Remote and network problems end it; they never raise."""
        loop = self._loop = asyncio.get_running_loop()
        self._mark("dial_started")
        try:
            if not self.plan.codecs:
                return self._finish(EndReason.NO_COMMON_CODEC, "no offered codec can be played")
            try:
                await self._prefetch_announcement()
                self._media = CallMedia.open(
                    self.plan,
                    self._engine,
                    self._ports,
                    self._media_timeout_s,
                    self._urandom,
                    self._load_audio,
                )
            except (MediaAppError, OSError) as exc:
                return self._finish(EndReason.PROTOCOL_ERROR, f"media app: {exc}")
            try:
                self._link = await self._pool.acquire(self.plan.host, self.plan.port)
            except SipConnectFailed as exc:
                reason = EndReason.TLS_FAILURE if exc.tls_error else EndReason.CONNECT_FAILED
                return self._finish(reason, exc.tls_error or exc.reason)
            if self.end_reason is not None:
                return self._finish(self.end_reason, "hung up before dialling")
            queue = self._dial(self._link, loop.time())
            if queue is None:
                return self._finish(EndReason.CONNECT_FAILED, "the connection closed before the INVITE")
            while not self._done:
                self._handle(await queue.get())
            return self._finish(self.end_reason or EndReason.LOCAL_HANGUP, self.detail)
        finally:
            if not self._done:  # cancelled: leave the peer a clean end
                self.hangup(EndReason.LOCAL_HANGUP)
                self._finish(EndReason.LOCAL_HANGUP, "cancelled")

    def hangup(self, reason: EndReason) -> None:
        """End the call: CANCEL while ringing, BYE once answered. Idempotent; ``run()`` returns when done."""
        if self._done or self.end_reason is not None:
            return
        self.end_reason = reason
        link, call_id, loop = self._link, self.sip_call_id, self._loop
        if link is None or call_id is None or loop is None:
            return  # not dialled yet: run() stops before sending the INVITE
        self._set_state("ending")
        try:
            if "answered" in self.timeline:
                link.connection.bye(call_id, now=loop.time())
            else:
                link.connection.cancel(call_id, now=loop.time())
        except LocalProtocolError:
            # The answer or the end is already queued for us: CallAnswered sends the BYE, or the call ended.
            return
        link.flush()

    def snapshot(self) -> dict[str, Any]:
        """Live, secret-free state for the health server's /calls."""
        media = self._media
        params = media.params if media else None
        connected_at = self.timeline.get("answered")
        now = self._loop.time() if self._loop else 0.0
        return {
            "label": self.plan.label,
            "state": self.state,
            "sip_call_id": self.sip_call_id,
            "codec": params.codec if params else None,
            "suite": params.suite if params else None,
            "connected_s": None if connected_at is None else round(now - connected_at, 1),
            "end_reason": None if self.end_reason is None else self.end_reason.value,
            "session_refreshes": self.refreshes,
            "media": media.stats().as_dict() if media else None,
        }

    # -- dialling --

    def _dial(self, link: SipLink, now: float) -> asyncio.Queue[SipEvent] | None:
        media = self._media
        assert media is not None  # noqa: S101 -- opened by run() before dialling
        media.local_ip = self._media_public_ip or link.local_address[0]
        session_id = int.from_bytes(self._urandom(6), "big")
        self._offer = build_offer(
            local_address=media.local_ip,
            rtp_port=media.leg.rtp_port,
            codecs=self.plan.codecs,
            suites=self.plan.suites,
            session_id=session_id,
            session_version=session_id,
            urandom=self._urandom,
        )
        media.local_sdp = self._offer.description
        try:
            call_id = link.connection.invite(
                request_uri=self.plan.request_uri,
                from_uri=self.plan.from_uri,
                to=self.plan.to,
                body=str(self._offer).encode(),
                now=now,
                ring_timeout=self.plan.ring_timeout_s,
                credentials=self.plan.credentials,
            )
        except LocalProtocolError:
            return None
        self.sip_call_id = call_id
        queue = link.open_call(call_id)
        link.flush()
        logger.info("call %s: INVITE sent (Call-ID %s)", self.plan.label, call_id)
        return queue

    # -- SIP events --

    def _handle(self, event: SipEvent) -> None:
        if isinstance(event, CallProgressed):
            self._mark("first_provisional")
            if event.status >= 180 and self.state == "dialing":
                self._set_state("ringing")
        elif isinstance(event, CallAnswered):
            self._answered(event)
        elif isinstance(event, CallFailed):
            self.sip_status = event.status
            if event.category is not FailureCategory.CANCELLED or self.end_reason is None:
                self.end_reason = FAILURE_REASONS.get(event.category, EndReason.REJECTED)
            self.detail = self.detail or f"{event.status} {event.reason}"
            self._done = True
        elif isinstance(event, DialogTerminated):
            self._terminated(event)
        elif isinstance(event, OfferReceived):
            self._reoffer(event)
        elif isinstance(event, RequestCompleted):
            self._probe_answered(event)
        elif isinstance(event, SessionRefreshed):
            self.refreshes += 1
        elif isinstance(event, MessageRejected):
            logger.info("call %s: peer message rejected: %s", self.plan.label, event.reason)

    def _answered(self, event: CallAnswered) -> None:
        self.sip_status = event.status
        self._mark("answered")
        if self.end_reason is not None:  # our CANCEL crossed the 200 OK (RFC 3261 §9.1): end it with BYE
            self._bye()
            return
        offer, media = self._offer, self._media
        assert offer is not None  # noqa: S101 -- set by _dial()
        assert media is not None  # noqa: S101 -- set by run()
        try:
            params = process_answer(offer, event.body.decode("utf-8", "replace"))
            media.start(params)
        except NegotiationFailed as exc:
            # SRTP is mandatory: never fall back to plain RTP; hang up with the reason.
            self.detail = str(exc)
            self.end_reason = NEGOTIATION_REASONS.get(exc.reason, EndReason.PROTOCOL_ERROR)
            self._bye()
            return
        media.on_inactive = self._probe
        self._set_state("connected")
        loop = self._loop
        assert loop is not None  # noqa: S101 -- set by run()
        self._timers.append(loop.call_later(self.plan.max_duration_s, self.hangup, EndReason.MAX_DURATION))
        self._timers.append(loop.call_later(0.02, self._watch_first_media))
        if self.plan.dtmf and not media.send_dtmf(self.plan.dtmf):
            self.detail = "the peer did not accept telephone-event: DTMF not sent"
        logger.info("call %s: connected, %s over %s", self.plan.label, params.codec, params.suite)

    def _terminated(self, event: DialogTerminated) -> None:
        self._done = True
        if self.end_reason is not None:
            return
        if self._probe_id is not None and event.reason in (
            TerminationReason.REQUEST_TIMEOUT,
            TerminationReason.DIALOG_GONE,
        ):
            self.end_reason = EndReason.MEDIA_TIMEOUT
        elif event.reason is TerminationReason.BYE:
            self.end_reason = EndReason.REMOTE_BYE if event.by is Party.REMOTE else EndReason.LOCAL_HANGUP
        else:
            self.end_reason = TERMINATION_REASONS.get(event.reason, EndReason.PROTOCOL_ERROR)
        self.detail = self.detail or f"dialog ended by {event.by.value}: {event.reason.value}"

    def _reoffer(self, event: OfferReceived) -> None:
        """Answer a re-INVITE/UPDATE offer (hold, resume, new address or keys) per RFC 3264 §8."""
        link, media, loop = self._link, self._media, self._loop
        assert link is not None  # noqa: S101 -- in a dialog
        assert media is not None  # noqa: S101 -- in a dialog
        assert loop is not None  # noqa: S101 -- in a dialog
        try:
            answer = media.answer_reoffer(event.body.decode("utf-8", "replace"), self.plan)
        except NegotiationFailed as exc:
            # RFC 3261 §14.2: refusing the offer keeps the session as it was.
            logger.info("call %s: refused %s offer: %s", self.plan.label, event.method, exc.reason.value)
            link.connection.reject_offer(event.call_id, event.request_id, now=loop.time(), status=488)
        else:
            link.connection.answer_offer(event.call_id, event.request_id, answer, now=loop.time())
        link.flush()

    # -- media inactivity --

    def _probe(self) -> None:
        """No media for media_timeout_s: ask, with an in-dialog OPTIONS, whether the peer is still there."""
        link, loop, call_id = self._link, self._loop, self.sip_call_id
        if self._done or self.end_reason is not None or self._probe_id is not None:
            return
        if link is None or loop is None or call_id is None:
            return
        try:
            self._probe_id = link.connection.options(call_id=call_id, now=loop.time())
        except LocalProtocolError:
            return
        link.flush()

    def _probe_answered(self, event: RequestCompleted) -> None:
        if event.request_id != self._probe_id:
            return
        self._probe_id = None
        if self._on_probe is not None:
            self._on_probe(event.status)
        if event.status in _DIALOG_DEAD:
            # The SIP core ends the dialog itself on these (RFC 3261 §12.2.1.2); say why it ended.
            self.end_reason = self.end_reason or EndReason.MEDIA_TIMEOUT
            self.detail = f"no media for {self._media_timeout_s:g} s and OPTIONS got {event.status}"
            return
        media, loop = self._media, self._loop
        if media is not None and media.inactive and loop is not None:
            # A silent meeting: the peer answers (any status but 408/481), it just sends no audio. Ask again
            # later.
            self._timers.append(loop.call_later(self._media_timeout_s, self._probe))

    def _watch_first_media(self) -> None:
        media, loop = self._media, self._loop
        if self._done or media is None or loop is None:
            return
        if media.packets_received > 0:
            self._mark("first_media")
        else:
            self._timers.append(loop.call_later(0.02, self._watch_first_media))

    # -- helpers --

    def _bye(self) -> None:
        link, loop, call_id = self._link, self._loop, self.sip_call_id
        if link is None or loop is None or call_id is None:
            return
        self._set_state("ending")
        try:
            link.connection.bye(call_id, now=loop.time())
        except LocalProtocolError:
            return  # already ending; DialogTerminated follows
        link.flush()

    def _mark(self, name: str) -> None:
        if name not in self.timeline and self._loop is not None:
            self.timeline[name] = self._loop.time()

    def _set_state(self, state: str) -> None:
        if self.state == state:
            return
        self.state = state
        try:
            self._on_state(state)
        except Exception:
            logger.exception("call %s: state callback failed for %s", self.plan.label, state)

    def _finish(self, reason: EndReason, detail: str) -> CallResult:
        self._done = True
        self.end_reason = reason
        self._mark("ended")
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._link is not None and self.sip_call_id is not None:
            self._link.close_call(self.sip_call_id)
        media = self._media
        stats, recording = media.close() if media else (None, None)
        answered = self.timeline.get("answered")
        params = media.params if media else None
        result = CallResult(
            end_reason=reason,
            connected=params is not None,
            sip_status=self.sip_status,
            detail=detail,
            sip_call_id=self.sip_call_id,
            codec=params.codec if params else None,
            suite=params.suite if params else None,
            setup_latency_s=None if answered is None else answered - self.timeline["dial_started"],
            duration_s=0.0 if answered is None or params is None else self.timeline["ended"] - answered,
            timeline=dict(self.timeline),
            recording=recording,
            **({"media": stats} if stats is not None else {}),
        )
        self._set_state("ended")
        logger.info("call %s ended: %s (%s)", self.plan.label, reason.value, detail)
        return result
