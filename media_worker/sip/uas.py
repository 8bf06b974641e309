"""The called side of a call: a new INVITE, our provisional and final answers, and CANCEL
(RFC 3261 §8.2, §9.2, §13.3; RFC 4028 §9).
"""

from __future__ import annotations

from collections.abc import Iterable

from media_worker.sip.auth import ChallengeResponder
from media_worker.sip.calls import Call, CallRole, CallState
from media_worker.sip.context import SipContext
from media_worker.sip.dialog import Dialog, DialogState
from media_worker.sip.events import CallCancelled, IncomingCall, Party
from media_worker.sip.exceptions import LocalProtocolError
from media_worker.sip.in_dialog_client import pump, remove_call, start_2xx_retransmit
from media_worker.sip.message import SipRequest
from media_worker.sip.session_timer import (
    SessionDecision,
    SessionTimer,
    TooSmall,
    negotiate_as_uas,
    response_headers,
)
from media_worker.sip.transaction import ServerTransaction

__all__ = ["answer", "receive_cancel", "receive_invite", "reject"]


def receive_invite(ctx: SipContext, request: SipRequest, tx: ServerTransaction, now: float) -> None:
    """An INVITE without a To tag: a new call for the layer above, unless it fails our checks (§8.2)."""
    call_id = request.call_id
    if call_id in ctx.calls:
        ctx.respond(tx, 482, now)  # §8.2.2.2: a second INVITE for a call we already have
        return
    if not request.headers.get_all("Contact"):
        ctx.respond(tx, 400, now, reason="Missing Contact")  # §8.1.1.8
        return
    supported = {option.lower() for option in ctx.config.supported}
    unsupported = [option for option in request.headers.get_all("Require") if option.lower() not in supported]
    if unsupported:
        ctx.respond(tx, 420, now, headers=[("Unsupported", ", ".join(unsupported))])  # §8.2.2.3
        return
    decision = negotiate_as_uas(
        request.headers, min_se=ctx.config.min_se, preferred=ctx.config.preferred_refresher
    )
    if isinstance(decision, TooSmall):
        ctx.respond(tx, 422, now, headers=[("Min-SE", str(decision.min_se))])  # RFC 4028 §9
        return
    ctx.respond(tx, 100, now)  # §17.2.1: at once, we cannot promise a final answer within 200 ms
    call = Call(
        call_id=call_id,
        role=CallRole.UAS,
        state=CallState.RINGING,
        auth=ChallengeResponder(None),
        server_tx=tx,
        local_tag=ctx.new_tag(),
        initial_session=decision,
    )
    ctx.calls[call_id] = call
    ctx.emit(
        IncomingCall(
            call_id=call_id,
            request_uri=request.uri,
            from_=request.from_,
            to=request.to,
            content_type=request.content_type,
            body=request.body,
            headers=request.headers,
        )
    )


def answer(
    ctx: SipContext,
    call: Call,
    status: int,
    *,
    body: bytes,
    content_type: str,
    headers: Iterable[tuple[str, str]],
    refresher: Party | None,
    now: float,
) -> None:
    tx = _ringing(call)
    if not 100 <= status < 300:
        raise LocalProtocolError(f"answer() takes 1xx or 2xx, not {status}; use reject()")
    if status == 100:
        return  # already sent when the INVITE arrived
    request = tx.request
    if call.dialog is None:
        call.dialog = Dialog.from_uas_request(request, local_tag=call.local_tag, local_seq=ctx.initial_seq())
    fields = [("Record-Route", value) for value in request.headers.get_all("Record-Route")]  # §12.1.1
    fields.append(("Contact", ctx.contact()))
    decision = _with_refresher(call.initial_session, refresher)
    if status >= 200:
        fields += ctx.capability_headers()
        if decision is not None:
            fields += response_headers(decision)
    fields += headers
    response = ctx.respond(
        tx,
        status,
        now,
        to_tag=call.local_tag,
        headers=fields,
        body=body,
        content_type=content_type if body else None,
    )
    if status < 200:
        return
    call.dialog.state = DialogState.CONFIRMED
    call.state = CallState.WAITING_ACK
    call.announced = True
    call.server_tx = None
    call.local_sdp, call.local_sdp_type = body, content_type
    if decision is not None:
        call.session = SessionTimer(
            interval=decision.interval,
            local_refresher=decision.refresher == "uas",
            now=now,
            min_se=ctx.config.min_se,
        )
    start_2xx_retransmit(ctx, call, response, now)


def _with_refresher(decision: SessionDecision | None, refresher: Party | None) -> SessionDecision | None:
    if decision is None or refresher is None:
        return decision
    if refresher is Party.LOCAL or not decision.require_timer:
        return SessionDecision(decision.interval, "uas", decision.require_timer)
    return SessionDecision(decision.interval, "uac", decision.require_timer)


def reject(
    ctx: SipContext,
    call: Call,
    status: int,
    *,
    reason: str | None,
    headers: Iterable[tuple[str, str]],
    now: float,
) -> None:
    tx = _ringing(call)
    if not 300 <= status < 700:
        raise LocalProtocolError(f"reject() takes 3xx-6xx, not {status}")
    ctx.respond(tx, status, now, reason=reason, to_tag=call.local_tag, headers=headers)
    remove_call(ctx, call)


def _ringing(call: Call) -> ServerTransaction:
    if call.role is not CallRole.UAS or call.state is not CallState.RINGING or call.server_tx is None:
        raise LocalProtocolError(f"call {call.call_id} has no INVITE waiting for an answer")
    return call.server_tx


def receive_cancel(ctx: SipContext, request: SipRequest, tx: ServerTransaction, now: float) -> None:
    """RFC 3261 §9.2: 200 to the CANCEL, then 487 to the INVITE if it has no final response yet."""
    invite_tx = ctx.server_txs.get((tx.key[0], tx.key[1], "INVITE"))
    if invite_tx is None:
        ctx.respond(tx, 481, now)
        return
    call = ctx.calls.get(request.call_id)
    local_tag = call.local_tag if call is not None and call.role is CallRole.UAS else None
    ctx.respond(tx, 200, now, to_tag=local_tag)
    if invite_tx.final_sent:
        return
    ctx.respond(invite_tx, 487, now, to_tag=local_tag)
    if call is None:
        return
    if call.server_tx is invite_tx:
        remove_call(ctx, call)
        ctx.emit(CallCancelled(call_id=call.call_id))
    elif call.incoming is not None and call.incoming.tx is invite_tx:
        call.incoming = None
        pump(ctx, call, now)
