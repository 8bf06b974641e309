"""SipConnection: a sans-I/O SIP user agent over one reliable (TLS) connection, carrying any number of calls.

It is driven by three things: API calls (the verbs below), network input (``receive_data``) and timers
(``handle_timer``). After any of them, drain ``next_event()``, send ``data_to_send()`` and re-arm one timer
for ``get_timer()``. Time only enters as ``now`` (monotonic seconds); randomness only through ``urandom``.

The protocol logic lives in the modules this one dispatches to: ``uac`` (our INVITEs), ``uas`` (the peer's
INVITEs), ``in_dialog_client`` / ``in_dialog_server`` (inside a dialog), ``transaction``, ``dialog``,
``session_timer`` and ``auth``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable

from media_worker.sip import in_dialog_client, in_dialog_server, inbound, uac, uas
from media_worker.sip.auth import DigestCredentials
from media_worker.sip.calls import Call, CallState, InviteTemplate, Outgoing, Purpose
from media_worker.sip.context import SipConfiguration, SipContext, TraceEntry
from media_worker.sip.events import (
    ConnectionFailed,
    FailureCategory,
    Party,
    SipEvent,
    TerminationReason,
)
from media_worker.sip.exceptions import LocalProtocolError, RemoteProtocolError
from media_worker.sip.framing import PING, PONG, KeepAlivePing, KeepAlivePong, MalformedMessage, StreamFramer
from media_worker.sip.message import NameAddr, SipRequest
from media_worker.sip.redaction import redact_uri
from media_worker.sip.uri import SipUri

__all__ = ["SipConnection"]

_E164 = re.compile(r"\+?[1-9][0-9]{1,14}")  # ITU-T E.164: at most 15 digits, no leading zero
_DIALOG_STATES = (CallState.CONFIRMED, CallState.WAITING_ACK)


class SipConnection:
    """One SIP-over-TLS connection and every call on it, as a user agent (both UAC and UAS).

    Every verb that queues output says so: after calling it, flush data_to_send().
    """

    def __init__(
        self, *, configuration: SipConfiguration, urandom: Callable[[int], bytes] = os.urandom
    ) -> None:
        self._ctx = SipContext(configuration, urandom)
        self._framer = StreamFramer(report_malformed=True)
        self._failed = False

    # -- outputs --

    @property
    def configuration(self) -> SipConfiguration:
        return self._ctx.config

    @property
    def trace(self) -> tuple[TraceEntry, ...]:
        """The last messages sent and received (first lines only, join tokens redacted)."""
        return tuple(self._ctx.trace)

    @property
    def call_ids(self) -> tuple[str, ...]:
        """The calls this connection currently holds."""
        return tuple(self._ctx.calls)

    def data_to_send(self) -> bytes:
        """Bytes to write to the transport now (empty if none)."""
        data = bytes(self._ctx.outbox)
        self._ctx.outbox.clear()
        return data

    def next_event(self) -> SipEvent | None:
        """The next event, or None when there is none."""
        return self._ctx.events.popleft() if self._ctx.events else None

    def get_timer(self) -> float | None:
        """When handle_timer() must run next: the earliest transaction or call deadline, or None."""
        ctx = self._ctx
        deadlines = [tx.deadline for tx in ctx.client_txs.values()]
        deadlines += [tx.deadline for tx in ctx.server_txs.values()]
        deadlines += [call.deadline for call in ctx.calls.values()]
        present = [deadline for deadline in deadlines if deadline is not None]
        return min(present) if present else None

    # -- inputs --

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes read from the transport; bad input is answered, dropped or fails the stream.

        A malformed message between intact framing costs only itself (MessageRejected); a stream that cannot
        be framed any more fails the connection (ConnectionFailed, and every call on it ends).

        Then flush data_to_send().
        """
        if self._failed:
            return
        self._framer.feed(data)
        while True:
            try:
                item = self._framer.next_item()
            except RemoteProtocolError as exc:
                self._failed = True
                self._ctx.emit(ConnectionFailed(reason=redact_uri(str(exc))))
                inbound.lose_calls(self._ctx)
                return
            if item is None:
                return
            if isinstance(item, KeepAlivePing):
                self._ctx.outbox += PONG  # RFC 5626 §3.5.1
            elif isinstance(item, KeepAlivePong):
                continue
            elif isinstance(item, MalformedMessage):
                inbound.receive_malformed(self._ctx, item)  # answered (400...) or dropped; the stream goes on
            elif isinstance(item, SipRequest):
                self._ctx.received(item)
                inbound.receive_request(self._ctx, item, now)
            else:
                self._ctx.received(item)
                inbound.receive_response(self._ctx, item, now)

    def handle_timer(self, now: float) -> None:
        """Run every timer due at ``now``; then flush data_to_send()."""
        ctx = self._ctx
        for key, client in list(ctx.client_txs.items()):
            if client.deadline is not None and client.deadline <= now:
                timed_out = client.handle_timer(now)
                if client.terminated:
                    ctx.client_txs.pop(key, None)
                if timed_out:
                    client.on_timeout(now)
        for server_key_, server in list(ctx.server_txs.items()):
            server.handle_timer(now)
            if server.terminated:
                ctx.server_txs.pop(server_key_, None)
        for call in list(ctx.calls.values()):
            deadline = call.deadline
            if ctx.calls.get(call.call_id) is not call or deadline is None or deadline > now:
                continue
            uac.ring_timer_fired(ctx, call, now)
            in_dialog_client.two_xx_timer_fired(ctx, call, now)
            in_dialog_client.session_timer_fired(ctx, call, now)
            in_dialog_client.pump(ctx, call, now)

    def send_ping(self) -> None:
        """Queue a CRLF keep-alive (RFC 5626 §3.5.1), answered by one CRLF. Then flush data_to_send()."""
        self._check_open()
        self._ctx.outbox += PING

    def connection_lost(self) -> None:
        """The transport closed: every call on it ends (DialogTerminated or CallFailed events)."""
        self._failed = True
        inbound.lose_calls(self._ctx)

    # -- calling side --

    def invite(
        self,
        *,
        request_uri: SipUri,
        from_uri: SipUri,
        to: SipUri | NameAddr,
        body: bytes,
        now: float,
        content_type: str = "application/sdp",
        from_display_name: str | None = None,
        ring_timeout: float | None = None,
        session_expires: int | None = None,
        min_se: int | None = None,
        credentials: DigestCredentials | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> str:
        """Start a call; returns its Call-ID, the handle for the other verbs and the events.

        ``ring_timeout`` (seconds) cancels the call if it is not answered in time (CallFailed, NO_ANSWER).
        ``credentials`` answer one 401/407 challenge. Then flush data_to_send().
        """
        self._check_open()
        config = self._ctx.config
        interval = config.session_expires if session_expires is None else session_expires
        minimum = config.min_se if min_se is None else min_se
        if minimum < 90 or interval < minimum:
            raise LocalProtocolError("need 90 <= min_se <= session_expires (RFC 4028 §4, §5)")
        if from_uri.user is None or not _E164.fullmatch(from_uri.user):
            raise LocalProtocolError(
                "the From user must be an E.164 number (the Voice Connector only takes those)"
            )
        extra = tuple(headers)
        uac.check_extra_headers(extra)
        template = InviteTemplate(
            request_uri=request_uri,
            from_=NameAddr(from_uri, from_display_name, (("tag", self._ctx.new_tag()),)),
            to=to if isinstance(to, NameAddr) else NameAddr(to),
            body=body,
            content_type=content_type if body else None,
            headers=extra,
        )
        return uac.start_call(
            self._ctx,
            template=template,
            credentials=credentials,
            ring_timeout=ring_timeout,
            session_expires=interval,
            min_se=minimum,
            now=now,
        )

    def cancel(self, call_id: str, *, now: float) -> None:
        """Cancel our unanswered INVITE (CallFailed with CANCELLED follows). Then flush data_to_send()."""
        uac.cancel(self._ctx, self._call(call_id), FailureCategory.CANCELLED, now)

    # -- called side --

    def answer(
        self,
        call_id: str,
        status: int = 200,
        *,
        now: float,
        body: bytes = b"",
        content_type: str = "application/sdp",
        headers: Iterable[tuple[str, str]] = (),
        refresher: Party | None = None,
    ) -> None:
        """Answer an IncomingCall with a provisional (180, 183) or a 2xx. Then flush data_to_send().

        ``refresher`` overrides who refreshes the session when the INVITE left it open (RFC 4028 §9).
        """
        uas.answer(
            self._ctx,
            self._call(call_id),
            status,
            body=body,
            content_type=content_type,
            headers=tuple(headers),
            refresher=refresher,
            now=now,
        )

    def reject(
        self,
        call_id: str,
        status: int,
        *,
        now: float,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Refuse an IncomingCall with a 3xx-6xx. Then flush data_to_send()."""
        uas.reject(self._ctx, self._call(call_id), status, reason=reason, headers=tuple(headers), now=now)

    # -- inside a dialog, either side --

    def bye(self, call_id: str, *, now: float) -> None:
        """End an answered call (DialogTerminated follows the BYE's response). Then flush data_to_send()."""
        call = self._call(call_id)
        if call.state in (CallState.CALLING, CallState.RINGING):
            raise LocalProtocolError(f"call {call_id} is not answered: use cancel() or reject()")
        in_dialog_client.send_bye(self._ctx, call, now, TerminationReason.BYE)

    def reinvite(
        self, call_id: str, body: bytes, *, now: float, content_type: str = "application/sdp"
    ) -> int:
        """Send a new offer in a re-INVITE; returns its request id (AnswerReceived or OfferRejected follows).

        Queued while another offer/answer exchange runs (RFC 3261 §14.1). Then flush data_to_send().
        """
        return self._queue(call_id, Purpose.OFFER, "INVITE", body, content_type, now)

    def update(
        self, call_id: str, body: bytes | None = None, *, now: float, content_type: str = "application/sdp"
    ) -> int:
        """Send UPDATE (RFC 3311): an offer, or a refresh without ``body``. Then flush data_to_send()."""
        if body:
            return self._queue(call_id, Purpose.OFFER, "UPDATE", body, content_type, now)
        return self._queue(call_id, Purpose.REFRESH, "UPDATE", b"", None, now)

    def answer_offer(
        self, call_id: str, request_id: int, body: bytes, *, now: float, content_type: str = "application/sdp"
    ) -> None:
        """Accept an OfferReceived with our answer (200 OK). Then flush data_to_send()."""
        in_dialog_server.answer_offer(self._ctx, self._call(call_id), request_id, body, content_type, now)

    def reject_offer(
        self,
        call_id: str,
        request_id: int,
        *,
        now: float,
        status: int = 488,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Refuse an OfferReceived (488 Not Acceptable Here by default). Then flush data_to_send()."""
        if not 300 <= status < 700:
            raise LocalProtocolError(f"reject_offer() takes 3xx-6xx, not {status}")
        in_dialog_server.reject_offer(self._ctx, self._call(call_id), request_id, status, tuple(headers), now)

    def info(
        self,
        call_id: str,
        *,
        content_type: str,
        body: bytes,
        now: float,
        headers: Iterable[tuple[str, str]] = (),
    ) -> int:
        """Send INFO in a dialog; returns its request id (RequestCompleted follows).

        Then flush data_to_send()."""
        call = self._dialog_call(call_id)
        out = Outgoing(self._ctx.next_request_id(), Purpose.INFO, "INFO", body, content_type, tuple(headers))
        in_dialog_client.send_request(self._ctx, call, out, now)
        return out.request_id

    def options(
        self,
        *,
        now: float,
        call_id: str | None = None,
        request_uri: SipUri | None = None,
        from_uri: SipUri | None = None,
        to: SipUri | NameAddr | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> int:
        """Send OPTIONS inside the dialog of ``call_id``, or outside any dialog to ``request_uri``.

        Returns its request id (RequestCompleted follows). Then flush data_to_send().
        """
        self._check_open()
        extra = tuple(headers)
        if call_id is not None:
            call = self._dialog_call(call_id)
            out = Outgoing(self._ctx.next_request_id(), Purpose.OPTIONS, "OPTIONS", headers=extra)
            in_dialog_client.send_request(self._ctx, call, out, now)
            return out.request_id
        if request_uri is None or from_uri is None:
            raise LocalProtocolError("OPTIONS outside a dialog needs request_uri and from_uri")
        uac.check_extra_headers(extra)
        target = to if isinstance(to, NameAddr) else NameAddr(to or request_uri)
        return uac.send_options(
            self._ctx, request_uri=request_uri, from_uri=from_uri, to=target, headers=extra, now=now
        )

    # -- internals --

    def _check_open(self) -> None:
        if self._failed:
            raise LocalProtocolError("the connection has failed or closed; open a new one")

    def _call(self, call_id: str) -> Call:
        self._check_open()
        call = self._ctx.calls.get(call_id)
        if call is None:
            raise LocalProtocolError(f"no call {call_id!r} on this connection")
        return call

    def _dialog_call(self, call_id: str) -> Call:
        call = self._call(call_id)
        if call.dialog is None or call.state not in _DIALOG_STATES:
            raise LocalProtocolError(f"call {call_id} has no established dialog")
        return call

    def _queue(
        self, call_id: str, purpose: Purpose, method: str, body: bytes, content_type: str | None, now: float
    ) -> int:
        call = self._dialog_call(call_id)
        out = Outgoing(self._ctx.next_request_id(), purpose, method, body, content_type if body else None)
        call.queue.append(out)
        in_dialog_client.pump(self._ctx, call, now)
        return out.request_id
