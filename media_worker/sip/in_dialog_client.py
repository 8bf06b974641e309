"""Our requests inside a dialog and what their responses mean (RFC 3261 §12.2.1, §14.1, §15.1; RFC 3311;
RFC 4028).

Offers and refreshes go through a per-call queue so that only one offer/answer exchange runs at a time
(§14.1); a 491 puts the request back with the §14.1 randomized delay. The call timers (2xx retransmission,
session refresh and expiry) live here too.
"""

from __future__ import annotations

from media_worker.sip.calls import Call, CallState, Outgoing, Purpose, Retransmit
from media_worker.sip.context import SipContext
from media_worker.sip.events import (
    AnswerReceived,
    DialogTerminated,
    OfferRejected,
    Party,
    RequestCompleted,
    SessionRefreshed,
    TerminationReason,
    classify_failure,
)
from media_worker.sip.exceptions import ParseError
from media_worker.sip.message import Headers, SipResponse
from media_worker.sip.session_timer import (
    SessionTimer,
    parse_min_se,
    request_headers,
    uac_outcome,
)

__all__ = [
    "end_dialog",
    "pump",
    "remove_call",
    "send_bye",
    "send_request",
    "session_timer_fired",
    "start_2xx_retransmit",
    "two_xx_timer_fired",
]

_OFFER_METHODS = ("INVITE", "UPDATE")


# -- outgoing --


def send_request(ctx: SipContext, call: Call, out: Outgoing, now: float) -> None:
    """Send ``out`` with a new CSeq and branch (RFC 3261 §12.2.1.1)."""
    dialog = call.require_dialog()
    if out.method is None:
        # RFC 4028 §7.4 / §9: refresh with UPDATE when the peer allows it, else with a re-INVITE.
        out.method = "UPDATE" if "UPDATE" in dialog.peer_allow else "INVITE"
    method = out.method
    body, content_type = out.body, out.content_type
    headers: list[tuple[str, str]] = []
    if method in _OFFER_METHODS:
        if out.purpose is Purpose.REFRESH and method == "INVITE":
            body, content_type = call.local_sdp, call.local_sdp_type  # an unchanged offer
        headers += [("Contact", ctx.contact()), *ctx.capability_headers()]
        session = call.session
        if session is not None:
            headers += request_headers(
                interval=session.interval, min_se=session.min_se, refresher=session.refresher
            )
    elif method == "OPTIONS":
        headers += [("Accept", ", ".join(ctx.config.accept)), *ctx.capability_headers()]
    headers += ctx.user_agent(server=False)
    if out.auth_retried:
        auth = call.auth.authorization(
            method=method, uri=dialog.request_uri(), cnonce=ctx.token(8), body=body
        )
        if auth is not None:
            headers.append(auth)
    headers += out.headers
    request = dialog.build_request(
        method,
        via=ctx.via(ctx.new_branch()),
        seq=dialog.next_local_seq(),
        headers=headers,
        body=body,
        content_type=content_type if body else None,
    )
    call_id = call.call_id
    ctx.start_client(
        request,
        now,
        on_response=lambda response, when: _on_response(ctx, call_id, out, response, when),
        on_timeout=lambda when: _on_timeout(ctx, call_id, out, when),
    )


def pump(ctx: SipContext, call: Call, now: float) -> None:
    """Send the next queued offer or refresh when no exchange is running and its time has come."""
    if call.idle and call.queue and call.queue[0].not_before <= now:
        call.outgoing = call.queue.popleft()
        send_request(ctx, call, call.outgoing, now)


def send_bye(ctx: SipContext, call: Call, now: float, reason: TerminationReason) -> None:
    """End the dialog from our side (RFC 3261 §15.1.1); a UAS waits for the ACK of its 2xx first (§15)."""
    if call.state is CallState.TERMINATING:
        return
    call.end_reason = reason
    if call.state is CallState.WAITING_ACK:
        call.bye_after_ack = True
        return
    call.state = CallState.TERMINATING
    call.queue.clear()
    call.session = None
    call.retransmit = None
    if call.incoming is not None and not call.incoming.answered:
        ctx.respond(call.incoming.tx, 487, now)
    call.incoming = None
    send_request(ctx, call, Outgoing(ctx.next_request_id(), Purpose.BYE, "BYE", termination=reason), now)


def remove_call(ctx: SipContext, call: Call) -> None:
    if ctx.calls.get(call.call_id) is call:
        del ctx.calls[call.call_id]


def end_dialog(ctx: SipContext, call: Call, by: Party, reason: TerminationReason, status: int | None) -> None:
    """Forget the call; tell the layer above if it knew the call was up."""
    remove_call(ctx, call)
    if call.announced:
        ctx.emit(DialogTerminated(call_id=call.call_id, by=by, reason=reason, status=status))


def _on_response(ctx: SipContext, call_id: str, out: Outgoing, response: SipResponse, now: float) -> None:
    status = response.status
    if status < 200:
        return
    call = ctx.calls.get(call_id)
    if out.method == "INVITE" and status < 300 and call is not None and call.dialog is not None:
        _ack_2xx(ctx, call, response)  # always, even while terminating (§13.2.2.4)
    if call is None:
        return
    if status in (401, 407) and call.auth.accept(
        status,
        response.headers.get_all("WWW-Authenticate" if status == 401 else "Proxy-Authenticate"),
        already_retried=out.auth_retried,
    ):
        out.auth_retried = True
        send_request(ctx, call, out, now)
        return
    if out.purpose is Purpose.BYE:
        end_dialog(ctx, call, Party.LOCAL, out.termination, status)
    elif out.purpose in (Purpose.INFO, Purpose.OPTIONS):
        ctx.emit(
            RequestCompleted(
                call_id=call_id,
                request_id=out.request_id,
                method=out.method or "",
                status=status,
                reason=response.reason,
                headers=response.headers,
                body=response.body,
            )
        )
        _dialog_failed(ctx, call, status, now)
    else:
        _exchange_done(ctx, call, out, response, now)


def _dialog_failed(ctx: SipContext, call: Call, status: int, now: float) -> None:
    """RFC 3261 §12.2.1.2: 481 means the peer forgot the dialog; 408 (or no answer): it is unreachable."""
    if status == 481:
        end_dialog(ctx, call, Party.REMOTE, TerminationReason.DIALOG_GONE, status)
    elif status == 408:
        send_bye(ctx, call, now, TerminationReason.REQUEST_TIMEOUT)


def _on_timeout(ctx: SipContext, call_id: str, out: Outgoing, now: float) -> None:
    call = ctx.calls.get(call_id)
    if call is None:
        return
    if out.purpose is Purpose.BYE:
        end_dialog(ctx, call, Party.LOCAL, out.termination, 408)
    elif out.purpose in (Purpose.INFO, Purpose.OPTIONS):
        ctx.emit(
            RequestCompleted(
                call_id=call_id,
                request_id=out.request_id,
                method=out.method or "",
                status=408,
                reason="Request Timeout",
                headers=Headers(),
            )
        )
        _dialog_failed(ctx, call, 408, now)
    else:
        if call.outgoing is out:
            call.outgoing = None
        _dialog_failed(ctx, call, 408, now)


def _ack_2xx(ctx: SipContext, call: Call, response: SipResponse) -> None:
    """RFC 3261 §13.2.2.4: the UAC core ACKs every 2xx to an INVITE, and keeps the ACK for retransmits."""
    dialog = call.require_dialog()
    ack = dialog.build_request(
        "ACK", via=ctx.via(ctx.new_branch()), seq=response.cseq.seq, headers=ctx.user_agent(server=False)
    )
    call.ack = ack
    ctx.send(ack)


def _exchange_done(ctx: SipContext, call: Call, out: Outgoing, response: SipResponse, now: float) -> None:
    status = response.status
    if call.outgoing is out:
        call.outgoing = None
    if call.state is CallState.TERMINATING:
        return
    dialog = call.require_dialog()
    if status < 300:
        dialog.refresh_target(response.headers)
        dialog.learn_capabilities(response.headers)
        _apply_uac_session(ctx, call, response, now)
        if out.purpose is Purpose.OFFER:
            call.local_sdp, call.local_sdp_type = out.body, out.content_type
            ctx.emit(
                AnswerReceived(
                    call_id=call.call_id,
                    request_id=out.request_id,
                    method=out.method or "",
                    content_type=response.content_type,
                    body=response.body,
                )
            )
    elif status == 491:
        # RFC 3261 §14.1: the Call-ID owner waits 2.1-4 s, the other side 0-2 s, in 10 ms units.
        low, high = (2.1, 4.0) if dialog.is_caller else (0.0, 2.0)
        out.not_before = now + ctx.random_delay(low, high)
        call.queue.appendleft(out)
    elif status == 422 and not out.interval_retried and _raise_min_se(call, response):
        out.interval_retried = True
        call.queue.appendleft(out)
    elif status == 405 and out.purpose is Purpose.REFRESH and out.method == "UPDATE":
        out.method = "INVITE"  # the peer refuses UPDATE after all: refresh with a re-INVITE
        call.queue.appendleft(out)
    elif status in (408, 481):
        _dialog_failed(ctx, call, status, now)
        return
    elif out.purpose is Purpose.OFFER:
        ctx.emit(
            OfferRejected(
                call_id=call.call_id,
                request_id=out.request_id,
                method=out.method or "",
                status=status,
                reason=response.reason,
                category=classify_failure(status),
            )
        )
    # A failed refresh leaves refresh_pending set: the session then runs out and we send BYE (RFC 4028 §10).
    pump(ctx, call, now)


def _apply_uac_session(ctx: SipContext, call: Call, response: SipResponse, now: float) -> None:
    try:
        outcome = uac_outcome(response.headers)
    except ParseError:
        outcome = None
    if outcome is None:
        call.session = None  # RFC 4028 §7.2: a 2xx without Session-Expires ends session timing
        return
    apply_session(
        ctx, call, interval=outcome.interval, local=outcome.refresher == "uac", by=Party.LOCAL, now=now
    )


def apply_session(ctx: SipContext, call: Call, *, interval: int, local: bool, by: Party, now: float) -> None:
    """Start or restart the call's session timer with a negotiated interval (RFC 4028 §7.2, §9), and say so.

    ``local`` is whether we are the refresher; ``by`` is who sent the request that refreshed the session.
    """
    if call.session is None:
        call.session = SessionTimer(
            interval=interval, local_refresher=local, now=now, min_se=ctx.config.min_se
        )
    else:
        call.session.refreshed(interval=interval, local_refresher=local, now=now)
    ctx.emit(
        SessionRefreshed(
            call_id=call.call_id,
            session_expires=interval,
            refresher=Party.LOCAL if local else Party.REMOTE,
            by=by,
        )
    )


def _raise_min_se(call: Call, response: SipResponse) -> bool:
    """RFC 4028 §6, §7.4: after 422, retry with the response's Min-SE if it is larger than what we sent."""
    session, value = call.session, response.headers.get("Min-SE")
    if session is None or value is None:
        return False
    try:
        min_se = parse_min_se(value)
    except ParseError:
        return False
    if min_se <= session.interval:
        return False
    session.min_se, session.interval = min_se, min_se
    return True


# -- timers --


def start_2xx_retransmit(ctx: SipContext, call: Call, response: SipResponse, now: float) -> None:
    t1 = ctx.config.t1
    call.retransmit = Retransmit(bytes(response), response.cseq.seq, now + t1, t1, now + 64 * t1)


def two_xx_timer_fired(ctx: SipContext, call: Call, now: float) -> None:
    """Resend our 2xx at T1, 2*T1... capped at T2; give up after 64*T1 with a BYE (§13.3.1.4)."""
    pending = call.retransmit
    if pending is None:
        return
    if now >= pending.give_up_at:
        call.retransmit = None
        call.incoming = None
        if call.state is CallState.WAITING_ACK:
            call.state = CallState.CONFIRMED
        send_bye(ctx, call, now, TerminationReason.ACK_TIMEOUT)
    elif now >= pending.next_at:
        ctx.outbox += pending.data
        pending.interval = min(2 * pending.interval, ctx.config.t2)
        pending.next_at = now + pending.interval


def session_timer_fired(ctx: SipContext, call: Call, now: float) -> None:
    """RFC 4028: refresh at half the interval when we are the refresher; BYE when the session ends (§10)."""
    session = call.session
    if session is None or call.state is not CallState.CONFIRMED:
        return
    if now >= session.expires_at:
        send_bye(ctx, call, now, TerminationReason.SESSION_TIMER_EXPIRED)
        return
    refresh_at = session.refresh_at
    if refresh_at is not None and now >= refresh_at:
        session.refresh_pending = True
        call.queue.appendleft(Outgoing(ctx.next_request_id(), Purpose.REFRESH, None))
        pump(ctx, call, now)
