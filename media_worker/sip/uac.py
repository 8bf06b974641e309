"""The calling side of a call: the initial INVITE, its responses, digest and 422 retries, CANCEL
(RFC 3261 §8.1, §9.1, §13.2; RFC 4028 §7; RFC 7616).
"""

from __future__ import annotations

from media_worker.sip.auth import ChallengeResponder, DigestCredentials
from media_worker.sip.calls import Call, CallRole, CallState, InviteTemplate
from media_worker.sip.context import SipContext
from media_worker.sip.dialog import Dialog
from media_worker.sip.events import (
    CallAnswered,
    CallFailed,
    CallProgressed,
    FailureCategory,
    Party,
    RequestCompleted,
    TerminationReason,
    classify_failure,
)
from media_worker.sip.exceptions import LocalProtocolError, ParseError
from media_worker.sip.in_dialog_client import pump, remove_call, send_bye
from media_worker.sip.message import CSeq, Headers, NameAddr, SipRequest, SipResponse, build_request
from media_worker.sip.session_timer import SessionTimer, parse_min_se, request_headers, uac_outcome
from media_worker.sip.uri import SipUri

__all__ = ["cancel", "check_extra_headers", "resend_ack", "ring_timer_fired", "send_options", "start_call"]

_MAX_INTERVAL_RETRIES = 2


def start_call(
    ctx: SipContext,
    *,
    template: InviteTemplate,
    credentials: DigestCredentials | None,
    ring_timeout: float | None,
    session_expires: int,
    min_se: int,
    now: float,
) -> str:
    call_id = ctx.new_call_id()
    call = Call(
        call_id=call_id,
        role=CallRole.UAC,
        state=CallState.CALLING,
        auth=ChallengeResponder(credentials),
        template=template,
        session_expires=session_expires,
        min_se=min_se,
        ring_deadline=None if ring_timeout is None else now + ring_timeout,
        local_sdp=template.body,
        local_sdp_type=template.content_type,
    )
    ctx.calls[call_id] = call
    _send_invite(ctx, call, ctx.initial_seq(), now)
    return call_id


def _send_invite(ctx: SipContext, call: Call, seq: int, now: float) -> None:
    template = call.require_template()
    uri = str(template.request_uri)
    headers = [
        ("Via", ctx.via(ctx.new_branch())),
        ("Max-Forwards", "70"),
        ("From", str(template.from_)),
        ("To", str(template.to)),
        ("Contact", ctx.contact()),
        ("Call-ID", call.call_id),
        ("CSeq", str(CSeq(seq, "INVITE"))),
        *ctx.capability_headers(),
        *request_headers(interval=call.session_expires, min_se=call.min_se, refresher=None),
        *ctx.user_agent(server=False),
    ]
    auth = call.auth.authorization(method="INVITE", uri=uri, cnonce=ctx.token(8), body=template.body)
    if auth is not None:
        headers.append(auth)
    headers += template.headers
    request = build_request(
        "INVITE", uri, headers=headers, body=template.body, content_type=template.content_type
    )
    call.invite = request
    call.provisional_seen = False
    call_id = call.call_id
    call.invite_tx = ctx.start_client(
        request,
        now,
        on_response=lambda response, when: _on_response(ctx, call_id, request, response, when),
        on_timeout=lambda when: _on_timeout(ctx, call_id, request),
    )


def _on_response(
    ctx: SipContext, call_id: str, invite: SipRequest, response: SipResponse, now: float
) -> None:
    call = ctx.calls.get(call_id)
    if call is None or call.invite is not invite:
        return
    if response.status < 200:
        _provisional(ctx, call, response, now)
    elif response.status < 300:
        _answered(ctx, call, response, now)
    else:
        _failed(ctx, call, response, now)


def _provisional(ctx: SipContext, call: Call, response: SipResponse, now: float) -> None:
    invite = call.require_invite()
    call.provisional_seen = True
    tag = response.to.tag
    if response.status > 100 and tag is not None and (call.dialog is None or call.dialog.remote_tag != tag):
        call.dialog = Dialog.from_uac_response(invite, response)  # §12.1.2: an early dialog
    ctx.emit(
        CallProgressed(
            call_id=call.call_id,
            status=response.status,
            reason=response.reason,
            content_type=response.content_type,
            body=response.body,
        )
    )
    if call.cancel_reason is not None and not call.cancel_sent:
        _send_cancel(ctx, call, now)


def _answered(ctx: SipContext, call: Call, response: SipResponse, now: float) -> None:
    """RFC 3261 §13.2.2.4: confirm the dialog, ACK the 2xx, start the session timer (RFC 4028 §7.2)."""
    invite = call.require_invite()
    dialog = call.dialog
    if dialog is None or dialog.remote_tag != response.to.tag:
        dialog = Dialog.from_uac_response(invite, response)
    dialog.confirm(response)
    call.dialog = dialog
    call.ring_deadline = None
    call.state = CallState.CONFIRMED
    headers = list(ctx.user_agent(server=False))
    headers += [
        (name, value) for name, value in invite.headers if name in ("Authorization", "Proxy-Authorization")
    ]
    ack = dialog.build_request("ACK", via=ctx.via(ctx.new_branch()), seq=invite.cseq.seq, headers=headers)
    call.ack = ack
    ctx.send(ack)
    if call.cancel_reason is not None:
        # Our CANCEL crossed the 2xx: the call is up, so end it with BYE (§9.1) and report the cancellation.
        ctx.emit(
            CallFailed(
                call_id=call.call_id, status=487, reason="Request Terminated", category=call.cancel_reason
            )
        )
        send_bye(ctx, call, now, TerminationReason.BYE)
        return
    try:
        outcome = uac_outcome(response.headers)
    except ParseError:
        outcome = None
    refresher: Party | None = None
    if outcome is not None:
        local = outcome.refresher == "uac"
        refresher = Party.LOCAL if local else Party.REMOTE
        call.session = SessionTimer(
            interval=outcome.interval, local_refresher=local, now=now, min_se=call.min_se
        )
    call.announced = True
    ctx.emit(
        CallAnswered(
            call_id=call.call_id,
            status=response.status,
            reason=response.reason,
            content_type=response.content_type,
            body=response.body,
            session_expires=None if outcome is None else outcome.interval,
            refresher=refresher,
            headers=response.headers,
        )
    )
    pump(ctx, call, now)


def _failed(ctx: SipContext, call: Call, response: SipResponse, now: float) -> None:
    status = response.status
    call.dialog = None
    seq = call.require_invite().cseq.seq
    if call.cancel_reason is None:
        if status in (401, 407):
            header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
            challenges = response.headers.get_all(header)
            if call.auth.accept(status, challenges, already_retried=_was_authorized(call)):
                _send_invite(ctx, call, seq + 1, now)  # RFC 3261 §22.2: same Call-ID, new CSeq
                return
        if status == 422 and _retry_interval(call, response):
            _send_invite(ctx, call, seq + 1, now)  # RFC 4028 §7.3
            return
    category = call.cancel_reason if (call.cancel_reason and status == 487) else classify_failure(status)
    remove_call(ctx, call)
    ctx.emit(CallFailed(call_id=call.call_id, status=status, reason=response.reason, category=category))


def _was_authorized(call: Call) -> bool:
    headers = call.require_invite().headers
    return "Authorization" in headers or "Proxy-Authorization" in headers


def _retry_interval(call: Call, response: SipResponse) -> bool:
    """RFC 4028 §7.3: after 422, retry once more with the larger Min-SE the response demands."""
    value = response.headers.get("Min-SE")
    if value is None or call.interval_retries >= _MAX_INTERVAL_RETRIES:
        return False
    try:
        min_se = parse_min_se(value)
    except ParseError:
        return False
    if min_se <= call.min_se:
        return False
    call.interval_retries += 1
    call.min_se = min_se
    call.session_expires = max(call.session_expires, min_se)
    return True


def _on_timeout(ctx: SipContext, call_id: str, invite: SipRequest) -> None:
    """Timer B, or 64*T1 after our CANCEL without a final response (§9.1, §17.1.1.2)."""
    call = ctx.calls.get(call_id)
    if call is None or call.invite is not invite:
        return
    remove_call(ctx, call)
    category = call.cancel_reason or FailureCategory.TIMEOUT
    ctx.emit(CallFailed(call_id=call_id, status=408, reason="Request Timeout", category=category))


def cancel(ctx: SipContext, call: Call, reason: FailureCategory, now: float) -> None:
    """Cancel our pending INVITE; the CANCEL waits for a provisional response (§9.1)."""
    if call.role is not CallRole.UAC or call.state is not CallState.CALLING:
        raise LocalProtocolError(f"call {call.call_id} is not an unanswered outgoing call; use bye()")
    if call.cancel_reason is not None:
        return
    call.cancel_reason = reason
    call.ring_deadline = None
    if call.provisional_seen:
        _send_cancel(ctx, call, now)


def _send_cancel(ctx: SipContext, call: Call, now: float) -> None:
    """RFC 3261 §9.1: same Request-URI, Call-ID, From, To, CSeq number and top Via as the INVITE."""
    invite = call.require_invite()
    headers = Headers(
        [
            ("Via", invite.headers.get_all("Via")[0]),
            ("Max-Forwards", "70"),
            ("From", invite.headers.get("From") or ""),
            ("To", invite.headers.get("To") or ""),
            ("Call-ID", invite.call_id),
            ("CSeq", str(CSeq(invite.cseq.seq, "CANCEL"))),
            *[("Route", route) for route in invite.headers.get_all("Route")],
            *ctx.user_agent(server=False),
        ]
    )
    call.cancel_sent = True
    ctx.start_client(
        SipRequest("CANCEL", invite.uri, headers),
        now,
        on_response=lambda response, when: None,  # the INVITE's 487 (or 2xx) settles the call
        on_timeout=lambda when: None,
    )
    if call.invite_tx is not None:
        call.invite_tx.cancel_requested(now)


def ring_timer_fired(ctx: SipContext, call: Call, now: float) -> None:
    if call.state is CallState.CALLING and call.ring_deadline is not None and now >= call.ring_deadline:
        cancel(ctx, call, FailureCategory.NO_ANSWER, now)


def resend_ack(ctx: SipContext, response: SipResponse) -> bool:
    """A retransmitted 2xx to an INVITE (its transaction is gone): send the same ACK again (§13.2.2.4)."""
    call = ctx.calls.get(response.call_id)
    if call is None or call.ack is None or call.dialog is None:
        return False
    if call.ack.cseq.seq != response.cseq.seq or response.to.tag != call.dialog.remote_tag:
        return False
    ctx.send(call.ack)
    return True


_MANAGED = frozenset({"call-id", "cseq", "via", "from", "to", "contact", "content-length", "content-type"})


def check_extra_headers(headers: tuple[tuple[str, str], ...]) -> None:
    """Extra headers a caller passes must not clash with the ones the connection manages."""
    for name, _ in headers:
        if name.lower() in _MANAGED:
            raise LocalProtocolError(f"{name} is managed by the connection; do not pass it in headers")


def send_options(
    ctx: SipContext,
    *,
    request_uri: SipUri,
    from_uri: SipUri,
    to: NameAddr,
    headers: tuple[tuple[str, str], ...],
    now: float,
) -> int:
    """OPTIONS outside any dialog (RFC 3261 §11.1): a capability query or a keep-alive to the peer."""
    call_id, request_id = ctx.new_call_id(), ctx.next_request_id()
    fields = [
        ("Via", ctx.via(ctx.new_branch())),
        ("Max-Forwards", "70"),
        ("From", str(NameAddr(from_uri, None, (("tag", ctx.new_tag()),)))),
        ("To", str(to)),
        ("Call-ID", call_id),
        ("CSeq", str(CSeq(ctx.initial_seq(), "OPTIONS"))),
        ("Contact", ctx.contact()),
        ("Accept", ", ".join(ctx.config.accept)),
        *ctx.capability_headers(),
        *ctx.user_agent(server=False),
        *headers,
    ]

    def completed(response: SipResponse, now: float) -> None:
        if response.status >= 200:
            ctx.emit(
                RequestCompleted(
                    call_id=call_id,
                    request_id=request_id,
                    method="OPTIONS",
                    status=response.status,
                    reason=response.reason,
                    headers=response.headers,
                    body=response.body,
                )
            )

    def timed_out(now: float) -> None:
        ctx.emit(
            RequestCompleted(
                call_id=call_id,
                request_id=request_id,
                method="OPTIONS",
                status=408,
                reason="Request Timeout",
                headers=Headers(),
            )
        )

    ctx.start_client(
        build_request("OPTIONS", request_uri, headers=fields),
        now,
        on_response=completed,
        on_timeout=timed_out,
    )
    return request_id
