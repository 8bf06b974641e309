"""The peer's requests inside a dialog (RFC 3261 §12.2.2, §14.2, §15.1.2; RFC 3311 §5.2; RFC 4028 §9).

Requests the RFCs leave no choice about are answered here: BYE, OPTIONS, INFO, refreshes without a body,
and an offerless re-INVITE (answered with our current description). Offers go up as :class:`OfferReceived`
and come back through ``answer_offer`` / ``reject_offer``.
"""

from __future__ import annotations

from media_worker.sip.calls import Call, CallRole, CallState, IncomingExchange
from media_worker.sip.context import SipContext
from media_worker.sip.events import (
    CallCancelled,
    CallConfirmed,
    InfoReceived,
    OfferReceived,
    Party,
    TerminationReason,
)
from media_worker.sip.exceptions import LocalProtocolError
from media_worker.sip.in_dialog_client import (
    apply_session,
    end_dialog,
    pump,
    remove_call,
    send_bye,
    start_2xx_retransmit,
)
from media_worker.sip.message import SipRequest
from media_worker.sip.session_timer import (
    SessionDecision,
    TooSmall,
    negotiate_as_uas,
    response_headers,
)
from media_worker.sip.transaction import ServerTransaction

__all__ = ["answer_offer", "capabilities", "receive_ack", "receive_request", "reject_offer"]

_OFFER_METHODS = ("INVITE", "UPDATE")


# -- incoming --


def receive_request(
    ctx: SipContext, call: Call, request: SipRequest, tx: ServerTransaction, now: float
) -> None:
    """A request (not ACK, not CANCEL) that names the dialog of ``call``."""
    dialog = call.require_dialog()
    if not dialog.accept_remote_cseq(request.cseq.seq):
        ctx.respond(tx, 500, now, reason="CSeq Out Of Order")  # §12.2.2
        return
    method = request.method
    if call.state is CallState.TERMINATING and method != "BYE":
        ctx.respond(tx, 481, now)
        return
    if method == "BYE":
        _receive_bye(ctx, call, tx, now)
    elif method == "OPTIONS":
        ctx.respond(tx, 200, now, headers=capabilities(ctx))
    elif method == "INFO":
        ctx.respond(tx, 200, now)
        ctx.emit(
            InfoReceived(
                call_id=call.call_id,
                content_type=request.content_type,
                body=request.body,
                headers=request.headers,
            )
        )
    elif method in _OFFER_METHODS:
        _receive_offer_or_refresh(ctx, call, request, tx, now)
    else:
        ctx.respond(tx, 405, now, headers=ctx.capability_headers()[:1])  # §8.2.1


def receive_ack(ctx: SipContext, call: Call, request: SipRequest, now: float) -> None:
    """The ACK for our 2xx to an INVITE (§13.3.1.4); duplicates and strays are ignored."""
    pending = call.retransmit
    if pending is None or request.cseq.seq != pending.seq:
        return
    call.retransmit = None
    if call.state is CallState.WAITING_ACK:
        call.state = CallState.CONFIRMED
        ctx.emit(CallConfirmed(call_id=call.call_id, content_type=request.content_type, body=request.body))
        if call.bye_after_ack:
            send_bye(ctx, call, now, call.end_reason)
            return
    elif call.incoming is not None and call.incoming.answered:
        call.incoming = None
    pump(ctx, call, now)


def capabilities(ctx: SipContext) -> list[tuple[str, str]]:
    return [("Contact", ctx.contact()), *ctx.capability_headers(), ("Accept", ", ".join(ctx.config.accept))]


def _receive_bye(ctx: SipContext, call: Call, tx: ServerTransaction, now: float) -> None:
    ctx.respond(tx, 200, now)
    if call.incoming is not None and not call.incoming.answered:
        ctx.respond(call.incoming.tx, 487, now)  # §15.1.2
    if call.role is CallRole.UAS and call.state is CallState.RINGING and call.server_tx is not None:
        ctx.respond(call.server_tx, 487, now, to_tag=call.local_tag)
        remove_call(ctx, call)
        ctx.emit(CallCancelled(call_id=call.call_id))
        return
    if call.state is CallState.CALLING:
        return  # a BYE on our early dialog: the INVITE's own final response settles the call
    end_dialog(ctx, call, Party.REMOTE, TerminationReason.BYE, None)


def _receive_offer_or_refresh(
    ctx: SipContext, call: Call, request: SipRequest, tx: ServerTransaction, now: float
) -> None:
    method, has_offer = request.method, bool(request.body)
    busy_outgoing = call.outgoing is not None and (
        call.outgoing.method == "INVITE" or bool(call.outgoing.body)
    )
    if call.state not in (CallState.CONFIRMED, CallState.WAITING_ACK) or (
        method == "INVITE" and call.state is CallState.WAITING_ACK
    ):
        ctx.respond(tx, 500, now, headers=[("Retry-After", "1")])  # §14.2: an INVITE is still in progress
        return
    if (method == "INVITE" or has_offer) and busy_outgoing:
        ctx.respond(tx, 491, now)  # §14.2 / RFC 3311 §5.2: glare
        return
    if (method == "INVITE" or has_offer) and call.incoming is not None:
        ctx.respond(tx, 500, now, headers=[("Retry-After", str(int(ctx.random_delay(0, 10))))])  # §14.2
        return
    decision = negotiate_as_uas(request.headers, min_se=ctx.config.min_se)
    if isinstance(decision, TooSmall):
        ctx.respond(tx, 422, now, headers=[("Min-SE", str(decision.min_se))])  # RFC 4028 §9
        return
    dialog = call.require_dialog()
    dialog.refresh_target(request.headers)
    dialog.learn_capabilities(request.headers)
    incoming = IncomingExchange(ctx.next_request_id(), tx, method, has_offer, decision)
    if method == "INVITE":
        ctx.respond(tx, 100, now)
    if has_offer:
        call.incoming = incoming
        ctx.emit(
            OfferReceived(
                call_id=call.call_id,
                request_id=incoming.request_id,
                method=method,
                content_type=request.content_type,
                body=request.body,
            )
        )
    elif method == "INVITE":
        # An offerless re-INVITE asks for an offer: our current, unchanged description (§14.2, RFC 6337 §5.3).
        call.incoming = incoming
        _send_answer(ctx, call, incoming, call.local_sdp, call.local_sdp_type, now)
    else:
        _send_answer(ctx, call, incoming, b"", None, now)


def _send_answer(
    ctx: SipContext, call: Call, incoming: IncomingExchange, body: bytes, content_type: str | None, now: float
) -> None:
    headers = [("Contact", ctx.contact()), *ctx.capability_headers()]
    if incoming.session is not None:
        headers += response_headers(incoming.session)
    response = ctx.respond(
        incoming.tx, 200, now, headers=headers, body=body, content_type=content_type if body else None
    )
    if body:
        call.local_sdp, call.local_sdp_type = body, content_type
    _apply_uas_session(ctx, call, incoming.session, now)
    if incoming.method == "INVITE":
        incoming.answered = True
        start_2xx_retransmit(ctx, call, response, now)
    else:
        call.incoming = None
        pump(ctx, call, now)


def _apply_uas_session(ctx: SipContext, call: Call, decision: SessionDecision | None, now: float) -> None:
    if decision is None:
        call.session = None  # RFC 4028 §9: no Session-Expires in the request, none in our 2xx
        return
    apply_session(
        ctx, call, interval=decision.interval, local=decision.refresher == "uas", by=Party.REMOTE, now=now
    )


def answer_offer(
    ctx: SipContext, call: Call, request_id: int, body: bytes, content_type: str, now: float
) -> None:
    incoming = _pending_offer(call, request_id)
    _send_answer(ctx, call, incoming, body, content_type, now)


def reject_offer(
    ctx: SipContext,
    call: Call,
    request_id: int,
    status: int,
    headers: tuple[tuple[str, str], ...],
    now: float,
) -> None:
    incoming = _pending_offer(call, request_id)
    ctx.respond(incoming.tx, status, now, headers=headers)
    call.incoming = None
    pump(ctx, call, now)


def _pending_offer(call: Call, request_id: int) -> IncomingExchange:
    incoming = call.incoming
    if incoming is None or incoming.request_id != request_id or incoming.answered:
        raise LocalProtocolError(f"no unanswered offer {request_id} on call {call.call_id}")
    return incoming
