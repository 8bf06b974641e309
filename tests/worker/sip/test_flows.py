"""Whole calls between two in-memory SipConnections: events on both sides and the key lines on the wire."""

from __future__ import annotations

import pytest

from media_worker.sip import (
    AnswerReceived,
    CallAnswered,
    CallCancelled,
    CallConfirmed,
    CallFailed,
    CallProgressed,
    DialogTerminated,
    FailureCategory,
    IncomingCall,
    OfferReceived,
    Party,
    SessionRefreshed,
    SipRequest,
    SipResponse,
    TerminationReason,
    digest_challenge,
    verify_authorization,
)
from tests.worker.sip.pair import (
    ANSWER,
    OFFER,
    TOKEN,
    dial,
    drain,
    establish,
    lines,
    make_pair,
)

HOLD = OFFER.replace(b"a=sendrecv", b"a=sendonly")
HELD = ANSWER.replace(b"a=sendrecv", b"a=recvonly")


def test_invite_has_every_line_a_sip_engineer_expects() -> None:
    pair = make_pair()
    call_id = dial(pair)
    [invite] = pair.transfer(pair.caller)
    head = lines(invite)
    assert head[0].startswith(
        "INVITE sip:17035550122@abcdef1ghij2klmno3pqr4.voiceconnector.chime.aws;transport=tls;"
    )
    assert head[1].startswith("Via: SIP/2.0/TLS 192.0.2.10:40001;rport;branch=z9hG4bK")
    assert head[2] == "Max-Forwards: 70"
    assert head[3].startswith("From: <sip:+12065550100@192.0.2.10>;tag=")
    assert head[4].startswith(
        "To: <sip:17035550122@abcdef1ghij2klmno3pqr4.voiceconnector.chime.aws;X-chime-join-token="
    )
    assert head[4].endswith(";X-chime-meeting-id=m-1>")
    assert head[5] == "Contact: <sip:+12065550100@192.0.2.10:40001;transport=tls>"
    assert head[6] == f"Call-ID: {call_id}"
    assert head[7].startswith("CSeq: ")
    assert head[7].endswith(" INVITE")
    assert head[8] == "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO"
    assert head[9] == "Supported: timer"
    assert head[10:12] == ["Session-Expires: 1800", "Min-SE: 90"]
    assert "Content-Type: application/sdp" in head
    assert head[-1] == f"Content-Length: {len(OFFER)}"
    assert invite.body == OFFER


def test_call_with_ringing_early_media_answer_and_bye() -> None:
    pair = make_pair()
    call_id = dial(pair)
    pair.transfer(pair.caller)
    [incoming] = drain(pair.callee)
    assert isinstance(incoming, IncomingCall)
    assert incoming.body == OFFER
    assert incoming.to.uri.param("x-chime-join-token") is not None
    assert TOKEN not in repr(incoming)
    assert TOKEN.replace("=", "%3D") not in repr(incoming)
    [trying] = pair.transfer(pair.callee)
    assert isinstance(trying, SipResponse)
    assert trying.status == 100
    assert trying.to.tag is None

    pair.callee.answer(call_id, 180, now=pair.now)
    pair.callee.answer(call_id, 183, now=pair.now, body=ANSWER)
    pair.callee.answer(call_id, 200, now=pair.now, body=ANSWER)
    ringing, progress, ok = pair.transfer(pair.callee)
    assert isinstance(ok, SipResponse)
    assert ringing.to.tag == progress.to.tag == ok.to.tag is not None
    assert "Require: timer" in lines(ok)
    assert "Session-Expires: 1800;refresher=uac" in lines(ok)
    events = drain(pair.caller)
    assert [type(event) for event in events] == [CallProgressed, CallProgressed, CallProgressed, CallAnswered]
    assert [event.status for event in events] == [100, 180, 183, 200]  # type: ignore[attr-defined]  # all have it
    answered = events[-1]
    assert isinstance(answered, CallAnswered)
    assert answered.body == ANSWER
    assert answered.session_expires == 1800
    assert answered.refresher is Party.LOCAL

    [ack] = pair.transfer(pair.caller)
    assert isinstance(ack, SipRequest)
    assert ack.method == "ACK"
    assert ack.uri == "sip:17035550122@abcdef1ghij2klmno3pqr4.voiceconnector.chime.aws:5061;transport=tls"
    assert ack.cseq.seq == ok.cseq.seq
    assert ack.vias[0].branch != ok.vias[0].branch
    assert drain(pair.callee) == [CallConfirmed(call_id=call_id)]

    pair.caller.bye(call_id, now=pair.now)
    [bye] = pair.transfer(pair.caller)
    assert isinstance(bye, SipRequest)
    assert bye.cseq.seq == ack.cseq.seq + 1
    assert bye.to.tag == ok.to.tag
    assert drain(pair.callee) == [
        DialogTerminated(call_id=call_id, by=Party.REMOTE, reason=TerminationReason.BYE)
    ]
    [bye_ok] = pair.transfer(pair.callee)
    assert isinstance(bye_ok, SipResponse)
    assert bye_ok.status == 200
    assert drain(pair.caller) == [
        DialogTerminated(call_id=call_id, by=Party.LOCAL, reason=TerminationReason.BYE, status=200)
    ]
    assert pair.caller.call_ids == ()
    assert pair.callee.call_ids == ()
    assert pair.caller.get_timer() is None


def test_callee_hangs_up() -> None:
    pair = make_pair()
    call_id = establish(pair)
    pair.callee.bye(call_id, now=pair.now)
    [bye] = pair.transfer(pair.callee)
    assert isinstance(bye, SipRequest)
    assert bye.uri == "sip:+12065550100@192.0.2.10:40001;transport=tls"  # the caller's Contact
    assert bye.from_.tag != bye.to.tag
    assert "Route" not in bye.headers
    pair.roundtrip_until_done()
    assert drain(pair.caller) == [
        DialogTerminated(call_id=call_id, by=Party.REMOTE, reason=TerminationReason.BYE)
    ]
    assert drain(pair.callee) == [
        DialogTerminated(call_id=call_id, by=Party.LOCAL, reason=TerminationReason.BYE, status=200)
    ]


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (486, FailureCategory.BUSY),
        (600, FailureCategory.BUSY),
        (503, FailureCategory.UNAVAILABLE),
        (480, FailureCategory.UNAVAILABLE),
        (603, FailureCategory.REJECTED),
        (404, FailureCategory.REJECTED),
        (408, FailureCategory.TIMEOUT),
        (302, FailureCategory.REDIRECTED),
    ],
)
def test_rejections_are_classified_and_acknowledged(status: int, category: FailureCategory) -> None:
    pair = make_pair()
    call_id = dial(pair)
    [invite] = pair.transfer(pair.caller)
    assert isinstance(invite, SipRequest)
    pair.callee.reject(call_id, status, now=pair.now)
    pair.transfer(pair.callee)
    [ack] = pair.transfer(pair.caller)
    # RFC 3261 §17.1.1.3: the ACK for a non-2xx belongs to the INVITE transaction.
    assert isinstance(ack, SipRequest)
    assert ack.method == "ACK"
    assert ack.vias[0].branch == invite.vias[0].branch
    assert ack.uri == invite.uri
    assert ack.to.tag is not None
    events = drain(pair.caller)
    assert isinstance(events[-1], CallFailed)
    assert (events[-1].status, events[-1].category) == (status, category)
    assert pair.caller.call_ids == ()
    pair.advance(pair.now + 40)
    assert pair.callee.get_timer() is None
    assert pair.caller.get_timer() is None


def test_digest_challenge_then_success() -> None:
    from media_worker.sip import DigestCredentials

    pair = make_pair()
    credentials = DigestCredentials("worker", "s3cret")
    call_id = dial(pair, credentials=credentials)
    [first] = pair.transfer(pair.caller)
    drain(pair.callee)
    challenge = digest_challenge(realm="vc.example", nonce="n-1", opaque="op")
    pair.callee.reject(call_id, 401, now=pair.now, headers=[("WWW-Authenticate", challenge)])
    pair.transfer(pair.callee)
    ack, second = pair.transfer(pair.caller)
    assert isinstance(ack, SipRequest)
    assert ack.method == "ACK"
    assert isinstance(second, SipRequest)
    assert second.method == "INVITE"
    assert second.call_id == first.call_id
    assert second.from_.tag == first.from_.tag
    assert second.cseq.seq == first.cseq.seq + 1
    assert second.vias[0].branch != first.vias[0].branch
    authorization = second.headers.get("Authorization")
    assert authorization is not None
    assert "algorithm=SHA-256" in authorization
    assert "qop=auth" in authorization
    assert 'opaque="op"' in authorization
    assert "nc=00000001" in authorization
    assert verify_authorization(
        authorization, method="INVITE", password="s3cret", realm="vc.example", nonce="n-1"
    )
    assert "s3cret" not in repr(credentials)
    [incoming] = drain(pair.callee)
    assert isinstance(incoming, IncomingCall)
    pair.callee.answer(call_id, 200, now=pair.now, body=ANSWER)
    pair.roundtrip_until_done()
    events = drain(pair.caller)
    assert [type(event) for event in events] == [CallProgressed, CallProgressed, CallAnswered]


@pytest.mark.parametrize(
    ("status", "challenge_header", "answer_header"),
    [
        (401, "WWW-Authenticate", "Authorization"),
        (407, "Proxy-Authenticate", "Proxy-Authorization"),
    ],
)
def test_same_nonce_challenged_twice_is_an_auth_failure(
    status: int, challenge_header: str, answer_header: str
) -> None:
    from media_worker.sip import DigestCredentials

    pair = make_pair()
    call_id = dial(pair, credentials=DigestCredentials("worker", "wrong"))
    pair.transfer(pair.caller)
    challenge = digest_challenge(realm="vc.example", nonce="n-1", algorithm="MD5")
    for _ in range(2):
        drain(pair.callee)
        pair.callee.reject(call_id, status, now=pair.now, headers=[(challenge_header, challenge)])
        pair.transfer(pair.callee)
        sent = pair.transfer(pair.caller)
    assert [message.method for message in sent if isinstance(message, SipRequest)] == ["ACK"]
    retry = [m for m in pair.sent_by("caller") if isinstance(m, SipRequest) and m.method == "INVITE"][1]
    assert answer_header in retry.headers
    failed = drain(pair.caller)[-1]
    assert isinstance(failed, CallFailed)
    assert (failed.status, failed.category) == (status, FailureCategory.AUTH_FAILED)


def test_challenge_without_credentials_fails() -> None:
    pair = make_pair()
    call_id = dial(pair)
    pair.transfer(pair.caller)
    pair.callee.reject(
        call_id, 401, now=pair.now, headers=[("WWW-Authenticate", digest_challenge(realm="r", nonce="n"))]
    )
    pair.roundtrip_until_done()
    failed = drain(pair.caller)[-1]
    assert isinstance(failed, CallFailed)
    assert failed.category is FailureCategory.AUTH_FAILED


def test_session_interval_too_small_then_success() -> None:
    pair = make_pair(callee={"min_se": 2000, "session_expires": 2000})
    call_id = dial(pair)
    [first] = pair.transfer(pair.caller)
    [too_small] = pair.transfer(pair.callee)
    assert isinstance(too_small, SipResponse)
    assert too_small.status == 422
    assert "Min-SE: 2000" in lines(too_small)
    assert drain(pair.callee) == []
    _ack, second = pair.transfer(pair.caller)
    assert isinstance(second, SipRequest)
    assert second.cseq.seq == first.cseq.seq + 1
    assert "Session-Expires: 2000" in lines(second)
    assert "Min-SE: 2000" in lines(second)
    pair.callee.answer(call_id, 200, now=pair.now, body=ANSWER)
    pair.roundtrip_until_done()
    answered = drain(pair.caller)[-1]
    assert isinstance(answered, CallAnswered)
    assert answered.session_expires == 2000


def test_unresolvable_422_is_a_session_interval_failure() -> None:
    pair = make_pair()
    call_id = dial(pair)
    pair.transfer(pair.caller)
    pair.callee.reject(call_id, 422, now=pair.now, headers=[("Min-SE", "90")])
    pair.roundtrip_until_done()
    failed = drain(pair.caller)[-1]
    assert isinstance(failed, CallFailed)
    assert failed.category is FailureCategory.SESSION_INTERVAL


def test_reinvite_hold_and_resume() -> None:
    pair = make_pair()
    call_id = establish(pair)
    for offer, answer in ((HOLD, HELD), (OFFER, ANSWER)):
        request_id = pair.caller.reinvite(call_id, offer, now=pair.now)
        [reinvite] = pair.transfer(pair.caller)
        assert isinstance(reinvite, SipRequest)
        assert reinvite.method == "INVITE"
        assert reinvite.body == offer
        assert "Session-Expires: 1800;refresher=uac" in lines(reinvite)
        offered = drain(pair.callee)
        assert isinstance(offered[0], OfferReceived)
        assert offered[0].body == offer
        pair.callee.answer_offer(call_id, offered[0].request_id, answer, now=pair.now)
        pair.roundtrip_until_done()
        assert SessionRefreshed(
            call_id=call_id, session_expires=1800, refresher=Party.REMOTE, by=Party.REMOTE
        ) in drain(pair.callee)
        events = drain(pair.caller)
        assert (
            AnswerReceived(
                call_id=call_id,
                request_id=request_id,
                method="INVITE",
                content_type="application/sdp",
                body=answer,
            )
            in events
        )
        acks = [m for m in pair.sent_by("caller") if isinstance(m, SipRequest) and m.method == "ACK"]
        assert acks[-1].cseq.seq == reinvite.cseq.seq
    pair.advance(pair.now + 60)  # the callee saw its ACKs: no 2xx retransmission, no BYE
    assert pair.callee.call_ids == (call_id,)


def test_offer_rejected_keeps_the_call() -> None:
    from media_worker.sip import OfferRejected

    pair = make_pair()
    call_id = establish(pair)
    request_id = pair.caller.update(call_id, HOLD, now=pair.now)
    pair.transfer(pair.caller)
    offered = drain(pair.callee)[0]
    assert isinstance(offered, OfferReceived)
    assert offered.method == "UPDATE"
    pair.callee.reject_offer(call_id, offered.request_id, now=pair.now)
    pair.roundtrip_until_done()
    assert drain(pair.caller) == [
        OfferRejected(
            call_id=call_id,
            request_id=request_id,
            method="UPDATE",
            status=488,
            reason="Not Acceptable Here",
            category=FailureCategory.REJECTED,
        )
    ]
    assert pair.caller.call_ids == (call_id,)


def test_caller_refreshes_with_update_at_half_the_interval() -> None:
    pair = make_pair()
    start = pair.now
    call_id = establish(pair)
    assert pair.caller.get_timer() == start + 900
    pair.advance(start + 900)
    update, ok = pair.log[-2][1], pair.log[-1][1]
    assert isinstance(update, SipRequest)
    assert update.method == "UPDATE"
    assert update.body == b""
    assert "Session-Expires: 1800;refresher=uac" in lines(update)
    assert "Min-SE: 90" in lines(update)
    assert "Supported: timer" in lines(update)
    assert isinstance(ok, SipResponse)
    assert ok.status == 200
    assert "Require: timer" in lines(ok)
    assert "Session-Expires: 1800;refresher=uac" in lines(ok)
    assert drain(pair.caller) == [
        SessionRefreshed(call_id=call_id, session_expires=1800, refresher=Party.LOCAL, by=Party.LOCAL)
    ]
    assert drain(pair.callee) == [
        SessionRefreshed(call_id=call_id, session_expires=1800, refresher=Party.REMOTE, by=Party.REMOTE)
    ]
    assert pair.caller.get_timer() == start + 1800
    pair.advance(start + 3600 + 1)  # keeps refreshing, nobody hangs up
    assert pair.caller.call_ids == (call_id,)
    assert pair.callee.call_ids == (call_id,)


def test_refresh_uses_reinvite_when_the_peer_does_not_allow_update() -> None:
    pair = make_pair(callee={"allow": ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS")})
    start = pair.now
    call_id = establish(pair)
    pair.advance(start + 900)
    refresh = pair.log[-2][1]
    assert isinstance(refresh, SipRequest)
    assert refresh.method == "INVITE"
    assert refresh.body == OFFER  # the unchanged offer, which the layer above answers as any other
    offered = drain(pair.callee)[-1]
    assert isinstance(offered, OfferReceived)
    pair.callee.answer_offer(call_id, offered.request_id, ANSWER, now=pair.now)
    pair.roundtrip_until_done()
    assert [m.method for _, m in pair.log[-2:] if isinstance(m, SipRequest)] == ["ACK"]
    assert drain(pair.caller) == [
        SessionRefreshed(call_id=call_id, session_expires=1800, refresher=Party.LOCAL, by=Party.LOCAL)
    ]
    assert drain(pair.callee)[-1] == SessionRefreshed(
        call_id=call_id, session_expires=1800, refresher=Party.REMOTE, by=Party.REMOTE
    )


def test_missed_refresh_ends_the_call_with_bye() -> None:
    pair = make_pair()
    start = pair.now
    call_id = dial(pair)
    pair.transfer(pair.caller)
    pair.callee.answer(call_id, 200, now=pair.now, body=ANSWER, refresher=Party.LOCAL)  # the callee refreshes
    pair.roundtrip_until_done()
    answered = drain(pair.caller)[-1]
    assert isinstance(answered, CallAnswered)
    assert answered.refresher is Party.REMOTE
    drain(pair.callee)
    # RFC 4028 §10: BYE at expiry minus min(32, 1800/3) without a refresh; the callee never runs its timers.
    assert pair.caller.get_timer() == start + 1800 - 32
    pair.now = start + 1800 - 32
    pair.caller.handle_timer(pair.now)
    [bye] = pair.transfer(pair.caller)
    assert isinstance(bye, SipRequest)
    assert bye.method == "BYE"
    pair.transfer(pair.callee)
    assert drain(pair.caller) == [
        DialogTerminated(
            call_id=call_id, by=Party.LOCAL, reason=TerminationReason.SESSION_TIMER_EXPIRED, status=200
        )
    ]
    assert drain(pair.callee) == [
        DialogTerminated(call_id=call_id, by=Party.REMOTE, reason=TerminationReason.BYE)
    ]


def test_refresh_from_the_peer_keeps_the_call() -> None:
    pair = make_pair()
    start = pair.now
    call_id = dial(pair)
    pair.transfer(pair.caller)
    pair.callee.answer(call_id, 200, now=pair.now, body=ANSWER, refresher=Party.LOCAL)
    pair.roundtrip_until_done()
    drain(pair.caller)
    pair.advance(start + 2000)  # the callee refreshes at 900 and 1800
    refreshes = [m for m in pair.sent_by("callee") if isinstance(m, SipRequest) and m.method == "UPDATE"]
    assert len(refreshes) == 2
    assert "Session-Expires: 1800;refresher=uac" in lines(refreshes[0])
    assert all(
        isinstance(event, SessionRefreshed) and event.refresher is Party.REMOTE
        for event in drain(pair.caller)
    )
    assert pair.caller.call_ids == (call_id,)


def test_ring_timeout_cancels_then_487_is_acknowledged() -> None:
    pair = make_pair()
    start = pair.now
    call_id = dial(pair, ring_timeout=30)
    pair.transfer(pair.caller)
    pair.callee.answer(call_id, 180, now=pair.now)
    pair.roundtrip_until_done()
    [invite] = [m for m in pair.sent_by("caller") if isinstance(m, SipRequest)]
    drain(pair.caller)
    drain(pair.callee)
    pair.advance(start + 30)
    cancel, cancel_ok, terminated, ack = (m for _, m in pair.log[-4:])
    assert isinstance(cancel, SipRequest)
    assert cancel.method == "CANCEL"
    assert cancel.uri == invite.uri
    assert cancel.cseq.seq == invite.cseq.seq
    assert cancel.vias[0].branch == invite.vias[0].branch
    assert cancel.to.tag is None
    assert isinstance(cancel_ok, SipResponse)
    assert cancel_ok.status == 200
    assert isinstance(terminated, SipResponse)
    assert terminated.status == 487
    assert isinstance(ack, SipRequest)
    assert ack.method == "ACK"
    assert ack.vias[0].branch == invite.vias[0].branch
    assert drain(pair.callee) == [CallCancelled(call_id=call_id)]
    assert drain(pair.caller) == [
        CallFailed(
            call_id=call_id, status=487, reason="Request Terminated", category=FailureCategory.NO_ANSWER
        )
    ]
    pair.advance(start + 100)
    assert pair.caller.get_timer() is None
    assert pair.callee.get_timer() is None


def test_cancel_waits_for_a_provisional_response() -> None:
    pair = make_pair()
    call_id = dial(pair)
    pair.caller.cancel(call_id, now=pair.now)  # RFC 3261 §9.1: not before a provisional response
    assert [m.method for m in pair.transfer(pair.caller) if isinstance(m, SipRequest)] == ["INVITE"]
    pair.transfer(pair.callee)  # 100 Trying
    [cancel] = pair.transfer(pair.caller)
    assert isinstance(cancel, SipRequest)
    assert cancel.method == "CANCEL"
    pair.roundtrip_until_done()
    failed = drain(pair.caller)[-1]
    assert failed == CallFailed(
        call_id=call_id, status=487, reason="Request Terminated", category=FailureCategory.CANCELLED
    )


def test_no_response_at_all_times_out_after_64_t1() -> None:
    pair = make_pair()
    start = pair.now
    call_id = dial(pair)
    pair.caller.data_to_send()  # lost
    assert pair.caller.get_timer() == start + 32
    pair.caller.handle_timer(start + 32)
    assert drain(pair.caller) == [
        CallFailed(call_id=call_id, status=408, reason="Request Timeout", category=FailureCategory.TIMEOUT)
    ]


def test_retransmitted_2xx_is_acknowledged_again() -> None:
    pair = make_pair()
    start = pair.now
    call_id = dial(pair)
    pair.transfer(pair.caller)
    pair.callee.answer(call_id, 200, now=pair.now, body=ANSWER)
    pair.transfer(pair.callee)
    first_ack = pair.caller.data_to_send()  # lost on the way
    assert first_ack.startswith(b"ACK ")
    assert pair.callee.get_timer() == start + 0.5  # RFC 3261 §13.3.1.4: T1
    pair.now = start + 0.5
    pair.callee.handle_timer(pair.now)
    [again] = pair.transfer(pair.callee)
    assert isinstance(again, SipResponse)
    assert again.status == 200
    assert pair.caller.data_to_send() == first_ack  # the same ACK, byte for byte
    assert [type(e) for e in drain(pair.caller)] == [CallProgressed, CallAnswered]  # reported once
    pair.now = start + 1.5
    pair.callee.handle_timer(pair.now)  # next retransmission at T1 + 2*T1
    pair.transfer(pair.callee)
    pair.transfer(pair.caller)
    assert drain(pair.callee)[-1] == CallConfirmed(call_id=call_id)
    pair.advance(start + 100)
    assert pair.callee.call_ids == (call_id,)


def test_unacknowledged_2xx_ends_with_bye_after_64_t1() -> None:
    pair = make_pair()
    start = pair.now
    call_id = dial(pair)
    pair.transfer(pair.caller)
    pair.callee.answer(call_id, 200, now=pair.now, body=ANSWER)
    pair.transfer(pair.callee)
    drain(pair.callee)
    sent = []
    while (deadline := pair.callee.get_timer()) is not None and deadline <= start + 32:
        pair.callee.handle_timer(deadline)
        sent.append((deadline - start, pair.callee.data_to_send()[:12]))
    assert [t for t, _ in sent[:6]] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5]  # T1 doubling, capped at T2
    assert sent[-1] == (32.0, b"BYE sip:+120")
