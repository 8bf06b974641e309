"""What arrives from the peer: requests (new, retransmitted, CANCEL, in-dialog) and responses, routed to the
transaction, UAC, UAS and in-dialog modules. Bad requests are answered with their status hint or dropped, and
always reported as :class:`MessageRejected`.
"""

from __future__ import annotations

from media_worker.sip import in_dialog_server, uac, uas
from media_worker.sip.calls import CallRole, CallState
from media_worker.sip.context import SipContext
from media_worker.sip.events import (
    CallFailed,
    DialogTerminated,
    FailureCategory,
    MessageRejected,
    Party,
    TerminationReason,
)
from media_worker.sip.exceptions import ProtocolError, RemoteProtocolError
from media_worker.sip.message import SipRequest, SipResponse, build_response
from media_worker.sip.redaction import redact_uri
from media_worker.sip.transaction import ServerState, ServerTransaction, client_key, server_key

__all__ = ["lose_calls", "receive_request", "receive_response"]


def receive_request(ctx: SipContext, request: SipRequest, now: float) -> None:
    """A request from the peer: retransmission, CANCEL, new call, or in-dialog (§8.2, §12.2.2, §17.2.3)."""
    try:
        _dispatch_request(ctx, request, now)
    except ProtocolError as exc:
        _reject(ctx, request, exc, now)


def _dispatch_request(ctx: SipContext, request: SipRequest, now: float) -> None:
    # Everything matching needs, checked before any state changes (ParseError -> 400).
    call_id, to_tag = request.call_id, request.to.tag
    _ = (request.cseq, request.from_, request.vias[0])
    if request.method == "ACK":
        _receive_ack(ctx, request, now)
        return
    existing = ctx.server_txs.get(server_key(request))
    if existing is not None:
        again = existing.receive_request(request, now)  # a retransmission (§17.2.1, §17.2.2)
        if again is not None:
            ctx.send(again)
        return
    tx = ctx.start_server(request, now)
    if request.method == "CANCEL":
        uas.receive_cancel(ctx, request, tx, now)
    elif to_tag is None:
        _outside_dialog(ctx, request, tx, now)
    else:
        call = ctx.calls.get(call_id)
        if call is None or call.dialog is None or not call.dialog.matches(request, incoming_request=True):
            ctx.respond(tx, 481, now)  # §12.2.2
        else:
            in_dialog_server.receive_request(ctx, call, request, tx, now)


def _receive_ack(ctx: SipContext, request: SipRequest, now: float) -> None:
    key = server_key(request)
    tx = ctx.server_txs.get(key)
    if tx is not None and tx.state is ServerState.COMPLETED:
        tx.receive_request(request, now)  # the ACK for our non-2xx final (§17.2.1)
        if tx.terminated:
            ctx.server_txs.pop(key, None)
        return
    call = ctx.calls.get(request.call_id)
    if call is not None and call.dialog is not None and call.dialog.matches(request, incoming_request=True):
        in_dialog_server.receive_ack(ctx, call, request, now)


def _outside_dialog(ctx: SipContext, request: SipRequest, tx: ServerTransaction, now: float) -> None:
    method = request.method
    if method == "INVITE":
        uas.receive_invite(ctx, request, tx, now)
    elif method == "OPTIONS":
        ctx.respond(tx, 200, now, headers=in_dialog_server.capabilities(ctx))  # §11.2
    elif method not in ctx.config.allow:
        ctx.respond(tx, 405, now, headers=ctx.capability_headers()[:1])  # §8.2.1
    else:
        ctx.respond(tx, 481, now)  # BYE, UPDATE, INFO without a dialog (§12.2.2)


def _reject(ctx: SipContext, request: SipRequest, exc: ProtocolError, now: float) -> None:
    """Answer a request we cannot process with its status hint, or drop it when no answer is possible."""
    reason = redact_uri(str(exc))
    status = exc.status_hint if 400 <= exc.status_hint < 700 else 400
    sent: int | None = None
    if request.method != "ACK":
        try:
            tx = ctx.server_txs.get(server_key(request))
            if tx is not None and not tx.final_sent:
                sent = ctx.respond(tx, status, now).status
            elif tx is None:
                response = build_response(request, status)
                ctx.send(response)
                sent = response.status
        except ProtocolError:
            sent = None  # too broken to answer (no usable Via, From, To, Call-ID or CSeq)
    ctx.emit(
        MessageRejected(
            reason=reason, status=sent, method=request.method, call_id=request.headers.get("Call-ID")
        )
    )


def receive_response(ctx: SipContext, response: SipResponse, now: float) -> None:
    """A response from the peer, matched to its client transaction (§17.1.3) or re-ACKed (§13.2.2.4)."""
    try:
        key = client_key(response)
        tx = ctx.client_txs.get(key)
        if tx is None:
            if (
                response.cseq.method == "INVITE"
                and 200 <= response.status < 300
                and uac.resend_ack(ctx, response)
            ):
                return
            ctx.emit(
                MessageRejected(
                    reason="response matches no transaction",
                    status=None,
                    method=response.cseq.method,
                    call_id=response.call_id,
                )
            )
            return
        outcome = tx.receive_response(response, now)
        if outcome.ack is not None:
            ctx.send(outcome.ack)
        if tx.terminated:
            ctx.client_txs.pop(key, None)
        if outcome.deliver:
            tx.on_response(response, now)
    except RemoteProtocolError as exc:
        ctx.emit(
            MessageRejected(
                reason=redact_uri(str(exc)),
                status=None,
                method=None,
                call_id=response.headers.get("Call-ID"),
            )
        )


def lose_calls(ctx: SipContext) -> None:
    """The connection is gone: every call on it ends."""
    for call in list(ctx.calls.values()):
        if call.role is CallRole.UAC and call.state is CallState.CALLING:
            ctx.emit(
                CallFailed(
                    call_id=call.call_id,
                    status=503,
                    reason="Connection Lost",
                    category=FailureCategory.UNAVAILABLE,
                )
            )  # §8.1.3.1: a transport error
        elif call.announced:
            ctx.emit(
                DialogTerminated(
                    call_id=call.call_id, by=Party.REMOTE, reason=TerminationReason.CONNECTION_LOST
                )
            )
    ctx.calls.clear()
    ctx.client_txs.clear()
    ctx.server_txs.clear()
