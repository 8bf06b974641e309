"""What arrives from the peer: requests (new, retransmitted, CANCEL, in-dialog) and responses, routed to the
transaction, UAC, UAS and in-dialog modules. Bad requests are answered with their status hint or dropped, and
always reported as :class:`MessageRejected`; so are messages whose head could not even be parsed
(:class:`MalformedMessage`), as long as the stream around them is intact.
"""

from __future__ import annotations

from media_worker.sip import in_dialog_server, uac, uas
from media_worker.sip.calls import CallRole, CallState
from media_worker.sip.context import SipContext, TraceEntry
from media_worker.sip.events import (
    CallFailed,
    DialogTerminated,
    FailureCategory,
    MessageRejected,
    Party,
    TerminationReason,
)
from media_worker.sip.exceptions import ParseError, ProtocolError, RemoteProtocolError
from media_worker.sip.fields import CSeq, NameAddr, Via, check_name_addr
from media_worker.sip.framing import MalformedMessage, salvage_fields
from media_worker.sip.grammar import is_token, split_top_level
from media_worker.sip.message import REASON_PHRASES, Headers, SipRequest, SipResponse, build_response
from media_worker.sip.redaction import redact_uri
from media_worker.sip.transaction import ServerState, ServerTransaction, client_key, server_key

__all__ = ["lose_calls", "receive_malformed", "receive_request", "receive_response"]


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


def receive_malformed(ctx: SipContext, message: MalformedMessage) -> None:
    """A framed message with an invalid head: answer a request with the error's status hint (RFC 3261 §8.2,
    §21.4.1) when its Via, Call-ID and CSeq are usable, else drop it; always drop a response."""
    start, fields = salvage_fields(message.head)
    call_id = _single(fields, "Call-ID")
    if call_id is not None and (not call_id or any(char.isspace() for char in call_id)):
        call_id = None
    cseq = _cseq(fields)
    words = (start or "").split()
    method = words[0] if message.is_request and words and is_token(words[0]) else None
    if method is None and cseq is not None:
        method = cseq.method
    ctx.trace.append(TraceEntry("received", call_id, redact_uri((start or "?")[:120])))
    sent: int | None = None
    if message.is_request and method != "ACK" and (cseq is None or cseq.method != "ACK"):  # §17: no answer
        hint = message.error.status_hint
        response = _bad_request_response(ctx, fields, hint if 400 <= hint < 700 else 400, call_id, cseq)
        if response is not None:
            ctx.send(response)
            sent = response.status
    ctx.emit(
        MessageRejected(reason=redact_uri(str(message.error)), status=sent, method=method, call_id=call_id)
    )


def _bad_request_response(
    ctx: SipContext, fields: list[tuple[str, str]], status: int, call_id: str | None, cseq: CSeq | None
) -> SipResponse | None:
    # §8.2.6.2 copies Via (all, in order), From, To, Call-ID and CSeq. Without usable Vias, Call-ID and CSeq
    # the peer could not match the response to its transaction, so none is sent; From and To are copied
    # only when they parse.
    vias = [value for name, value in fields if name == "Via"]
    if not vias or call_id is None or cseq is None or not all(_usable_via(value) for value in vias):
        return None
    headers = Headers(("Via", value) for value in vias)
    from_, to = _single(fields, "From"), _single(fields, "To")
    if from_ is not None and _usable_address(from_):
        headers.add("From", from_)
    if to is not None and _usable_address(to):
        if NameAddr.parse(to).tag is None:
            to = f"{to};tag={ctx.new_tag()}"  # §8.2.6.2: every response but 100 gets a To tag
        headers.add("To", to)
    headers.add("Call-ID", call_id)
    headers.add("CSeq", str(cseq))
    for name, value in ctx.user_agent(server=True):
        headers.add(name, value)
    headers.add("Content-Length", "0")
    return SipResponse(status, REASON_PHRASES.get(status, "Bad Request"), headers)


def _single(fields: list[tuple[str, str]], name: str) -> str | None:
    """The value of a field that must appear once; None when absent or repeated."""
    values = [value for field_name, value in fields if field_name == name]
    return values[0] if len(values) == 1 else None


def _cseq(fields: list[tuple[str, str]]) -> CSeq | None:
    value = _single(fields, "CSeq")
    try:
        return None if value is None else CSeq.parse(value)
    except ParseError:
        return None


def _usable_via(value: str) -> bool:
    try:
        for part in split_top_level(value, ","):
            Via.parse(part.strip(" \t"))
    except ParseError:
        return False
    return True


def _usable_address(value: str) -> bool:
    try:
        check_name_addr(value)
    except ParseError:
        return False
    return True


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
