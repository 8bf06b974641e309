"""One call at the Voice Connector stand-in: answer, media, the injected faults, and the end.

Everything runs on the emulator's event loop; SIP verbs go to the call's server-role :class:`SipLink` and
are flushed at once. Media uses the worker's own media engine, so the stand-in speaks SRTP exactly as a peer
would: a steady tone out, everything heard recorded.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from emulator.vc_calls import CallRecord, CallState
from emulator.vc_checks import JoinAccepted
from emulator.vc_media import ToneRecorderApp, plain_rtp_answer, reoffer
from media_worker.audio import codec_by_name
from media_worker.negotiation import MediaParams, NegotiationFailed, Offer, answer_offer, process_answer
from media_worker.net.media_engine import MediaEngine, MediaLeg, NoFreePortsError, PortAllocator
from media_worker.net.sip_transport import SipLink
from media_worker.rtp import MediaSession, SrtpContext
from media_worker.sdp import Direction, SessionDescription
from media_worker.sip import (
    AnswerReceived,
    CallCancelled,
    CallConfirmed,
    DialogTerminated,
    IncomingCall,
    LocalProtocolError,
    OfferReceived,
    OfferRejected,
    Party,
    RequestCompleted,
    SessionRefreshed,
    SipEvent,
    TerminationReason,
)

__all__ = ["CallEnvironment", "EmulatedCall"]


@dataclass(frozen=True, slots=True)
class CallEnvironment:
    """What every call shares: the media engine and ports, the answer policy and the emulator's hooks."""

    engine: MediaEngine
    ports: PortAllocator
    local_address: str
    server_name: str
    codecs: Sequence[str]
    suites: Sequence[str]
    tone_hz: float
    notify: Callable[[], None]
    """Something changed: wake the waiters."""
    on_connected: Callable[[CallRecord], None]
    on_ended: Callable[[CallRecord], None]
    urandom: Callable[[int], bytes] = secrets.token_bytes


class EmulatedCall:
    """Drives one accepted INVITE through answer, media, faults and teardown."""

    def __init__(self, link: SipLink, record: CallRecord, env: CallEnvironment) -> None:
        self.link = link
        self._loop = asyncio.get_running_loop()
        self.record = record
        self._env = env
        self._leg: MediaLeg | None = None
        self._params: MediaParams | None = None
        self._answer_sdp: str | None = None
        self._pending_offer: Offer | None = None
        self._media_stopped = False
        self._timers: list[asyncio.TimerHandle] = []
        self._media_started = False

    # -- the INVITE --------------------------------------------------------------------------------------

    def start(self, event: IncomingCall, join: JoinAccepted) -> None:
        """Negotiate the offer, ring, and answer now or after the fault's delay."""
        record, fault = self.record, self.record.fault
        record.meeting_id, record.attendee_id = join.meeting_id, join.attendee_id
        if fault.reject is not None:
            self.reject(fault.reject, "Injected fault", check="fault")
            return
        if (event.content_type or "").lower() != "application/sdp" or not event.body:
            self.reject(488, "SDP offer required", check="sdp")
            return
        try:
            leg = MediaLeg(*self._env.ports.open_pair())
        except NoFreePortsError:
            self.reject(503, "No media ports free", check="capacity")
            return
        try:
            answer, params = answer_offer(
                event.body.decode("utf-8", "replace"),
                local_address=self._env.local_address,
                rtp_port=leg.rtp_port,
                codecs=self._env.codecs,
                suites=self._env.suites,
                urandom=self._env.urandom,
                session_id=int.from_bytes(self._env.urandom(4), "big"),
                session_version=0,
            )
        except NegotiationFailed as exc:
            leg.rtp_sock.close()
            leg.rtcp_sock.close()
            warning = f'399 {self._env.server_name} "{exc.reason.value}"'  # RFC 3261 §20.43
            self.reject(488, "Not Acceptable Here", check=f"sdp:{exc.reason.value}", warning=warning)
            return
        self._leg, self._params, self._answer_sdp = leg, params, answer
        record.leg, record.codec, record.suite = leg, params.codec, params.suite
        self._verb(lambda now: self.link.connection.answer(record.call_id, 180, now=now))
        if fault.answer_delay_s > 0:
            self._later(fault.answer_delay_s, self._send_answer)
        else:
            self._send_answer()

    def reject(self, status: int, reason: str, *, check: str, warning: str | None = None) -> None:
        record = self.record
        headers = [] if warning is None else [("Warning", warning)]
        self._verb(
            lambda now: self.link.connection.reject(
                record.call_id, status, now=now, reason=reason, headers=headers
            )
        )
        record.state, record.status, record.reason, record.failed_check = (
            CallState.REJECTED,
            status,
            reason,
            check,
        )
        self._env.notify()

    def _send_answer(self) -> None:
        record = self.record
        if record.state is not CallState.RINGING or self._answer_sdp is None:
            return
        body = self._answer_sdp
        if record.fault.answer_without_crypto:
            body = plain_rtp_answer(body)
            record.history.append("answered-without-crypto")
        self._verb(lambda now: self.link.connection.answer(record.call_id, 200, now=now, body=body.encode()))
        record.state, record.status, record.reason = CallState.ANSWERED, 200, "OK"
        if not record.fault.answer_without_crypto:
            self._start_media()
        self._env.notify()

    # -- media -------------------------------------------------------------------------------------------

    def _start_media(self) -> None:
        leg, params = self._leg, self._params
        if leg is None or params is None:
            return
        codec = codec_by_name(params.codec)
        if codec is None:  # the constructor only admits codecs the audio package has
            raise LocalProtocolError(f"no audio codec for {params.codec}")
        recorder = ToneRecorderApp(self._env.tone_hz, on_frame=self._on_frame)
        session = MediaSession(
            srtp=SrtpContext(params.suite, params.local_key_salt, params.remote_key_salt),
            payload_type=params.payload_type,
            now=self._loop.time(),
            clock_rate=params.clock_rate,
            telephone_event_payload_type=params.telephone_event_pt,
            urandom=self._env.urandom,
        )
        leg.start(self._effective(params), session, codec, recorder)
        self._env.engine.add(leg)
        self._media_started = True
        self.record.recorder = recorder
        self.record.direction = params.direction.value

    def _on_frame(self) -> None:
        self._env.notify()

    def _effective(self, params: MediaParams) -> MediaParams:
        if not self._media_stopped:
            return params
        return replace(params, direction=Direction.from_flags(send=False, receive=params.direction.receives))

    def _apply(self, params: MediaParams) -> None:
        """New negotiated parameters: same keys -> update the leg; new keys -> a fresh SRTP session."""
        previous, leg = self._params, self._leg
        self._params = params
        self.record.direction = params.direction.value
        if leg is None or not self._media_started:
            return
        if previous is not None and (previous.suite, previous.remote_key_salt, previous.local_key_salt) == (
            params.suite,
            params.remote_key_salt,
            params.local_key_salt,
        ):
            leg.update(self._effective(params))
            return
        self._env.engine.remove(leg)  # rekeyed: new sockets keep the old stream's stragglers apart
        self._media_started = False
        self._start_media()

    # -- events ------------------------------------------------------------------------------------------

    def handle(self, event: SipEvent) -> None:
        record = self.record
        if isinstance(event, CallConfirmed):
            record.state = CallState.CONNECTED
            self._env.on_connected(record)
            self._schedule_faults()
        elif isinstance(event, CallCancelled):
            record.state, record.ended_by, record.end_reason = CallState.CANCELLED, "caller", "cancel"
            self._finish()
        elif isinstance(event, DialogTerminated):
            self._terminated(event)
        elif isinstance(event, OfferReceived):
            self._answer_reoffer(event)
        elif isinstance(event, AnswerReceived):
            self._answer_received(event)
        elif isinstance(event, OfferRejected):
            record.history.append(f"offer-rejected:{event.status}")
        elif isinstance(event, SessionRefreshed):
            record.history.append(f"session-refreshed:{event.by.value}")
        elif isinstance(event, RequestCompleted):
            record.history.append(f"{event.method.lower()}:{event.status}")
        self._env.notify()

    def _terminated(self, event: DialogTerminated) -> None:
        record = self.record
        never_confirmed = record.state is CallState.ANSWERED and event.reason is TerminationReason.ACK_TIMEOUT
        record.state = CallState.FAILED if never_confirmed else CallState.ENDED
        if record.ended_by is None:
            record.ended_by = "caller" if event.by is Party.REMOTE else "emulator"
        if record.end_reason is None:
            record.end_reason = event.reason.value
        record.history.append(f"dialog-terminated:{event.reason.value}")
        self._finish()

    def _answer_reoffer(self, event: OfferReceived) -> None:
        record, params, previous = self.record, self._params, self._answer_sdp
        record.history.append(f"offer-received:{event.method}")
        if params is None or previous is None or self._leg is None:
            self._verb(
                lambda now: self.link.connection.reject_offer(record.call_id, event.request_id, now=now)
            )
            return
        try:
            answer, new_params = answer_offer(
                event.body.decode("utf-8", "replace"),
                local_address=self._env.local_address,
                rtp_port=self._leg.rtp_port,
                codecs=self._env.codecs,
                suites=self._env.suites,
                urandom=self._env.urandom,
                previous=SessionDescription.parse(previous),
                current=params,
            )
        except NegotiationFailed as exc:
            record.history.append(f"reoffer-refused:{exc.reason.value}")
            self._verb(
                lambda now: self.link.connection.reject_offer(record.call_id, event.request_id, now=now)
            )
            return
        self._answer_sdp = answer
        self._verb(
            lambda now: self.link.connection.answer_offer(
                record.call_id, event.request_id, answer.encode(), now=now
            )
        )
        self._apply(new_params)

    def _answer_received(self, event: AnswerReceived) -> None:
        offer, self._pending_offer = self._pending_offer, None
        if offer is None:
            return
        try:
            params = process_answer(offer, event.body.decode("utf-8", "replace"))
        except NegotiationFailed as exc:
            self.record.history.append(f"answer-refused:{exc.reason.value}")
            self.hangup("bad-answer")
            return
        self._answer_sdp = str(offer)
        self.record.history.append(f"answered:{params.direction.value}")
        self._apply(params)

    # -- faults and hang-up ------------------------------------------------------------------------------

    def _schedule_faults(self) -> None:
        fault = self.record.fault
        if fault.drop_after_s is not None:
            self._later(fault.drop_after_s, lambda: self.hangup("drop-after"))
        if fault.hold_resume_after_s is not None:
            delay = fault.hold_resume_after_s
            self._later(delay, lambda: self._send_reoffer(Direction.SENDONLY, "hold"))
            self._later(2 * delay, lambda: self._send_reoffer(Direction.SENDRECV, "resume"))
        if fault.update_refresh_after_s is not None:
            self._later(fault.update_refresh_after_s, self._send_update)
        if fault.stop_media_after_s is not None:
            self._later(fault.stop_media_after_s, self._stop_media)

    def _send_reoffer(self, direction: Direction, label: str) -> None:
        params, previous = self._params, self._answer_sdp
        if self.record.state is not CallState.CONNECTED or params is None or previous is None:
            return
        text, offer = reoffer(previous, params, direction)
        self._pending_offer = offer
        self.record.history.append(label)
        self._verb(lambda now: self.link.connection.reinvite(self.record.call_id, text.encode(), now=now))

    def _send_update(self) -> None:
        if self.record.state is not CallState.CONNECTED:
            return
        self.record.history.append("update-refresh")
        self._verb(lambda now: self.link.connection.update(self.record.call_id, now=now))

    def _stop_media(self) -> None:
        self._media_stopped = True
        self.record.history.append("media-stopped")
        if self._leg is not None and self._params is not None and self._media_started:
            self._leg.update(self._effective(self._params))
        self._env.notify()

    def connection_lost(self) -> None:
        """The TLS connection closed under a call that had no dialog event for it (still ringing)."""
        if self.record.is_final:
            return
        record = self.record
        record.state = CallState.FAILED if record.state is CallState.RINGING else CallState.ENDED
        record.ended_by = record.ended_by or "caller"
        record.end_reason = record.end_reason or "connection_lost"
        self._finish()

    def hangup(self, reason: str) -> None:
        """End the call from our side: BYE when answered, 480 while still ringing (idempotent)."""
        record = self.record
        if record.is_final:
            return
        record.ended_by, record.end_reason = "emulator", reason
        if record.state is CallState.RINGING:
            self.reject(480, "Temporarily Unavailable", check=reason)
            self._finish()
            return
        record.history.append("bye")
        self._verb(lambda now: self.link.connection.bye(record.call_id, now=now))

    def _finish(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        leg = self._leg
        self._leg = None
        if leg is not None:
            self.record.final_stats = leg.stats()
            if self._media_started:
                self._env.engine.remove(leg)
            else:
                leg.rtp_sock.close()
                leg.rtcp_sock.close()
        self.record.leg = None
        self._media_started = False
        self._env.on_ended(self.record)
        self._env.notify()

    # -- plumbing ----------------------------------------------------------------------------------------

    def _later(self, delay: float, action: Callable[[], None]) -> None:
        self._timers.append(self._loop.call_later(delay, action))

    def _verb(self, action: Callable[[float], object]) -> None:
        if not self.link.alive:
            return
        try:
            action(self._loop.time())
        except LocalProtocolError as exc:  # e.g. the call ended a moment ago: note it, never crash the loop
            self.record.history.append(f"verb-refused:{type(exc).__name__}")
        self.link.flush()
