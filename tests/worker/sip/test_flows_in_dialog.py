"""Requests inside an established dialog, between two in-memory SipConnections: glare, OPTIONS, INFO, 481."""

from __future__ import annotations

from media_worker.sip import (
    AnswerReceived,
    DialogTerminated,
    InfoReceived,
    OfferReceived,
    Party,
    RequestCompleted,
    SipRequest,
    SipResponse,
    TerminationReason,
)
from tests.worker.sip.pair import ANSWER, OFFER, VC_HOST, drain, establish, lines, make_pair, parse_stream

HOLD = OFFER.replace(b"a=sendrecv", b"a=sendonly")
HELD = ANSWER.replace(b"a=sendrecv", b"a=recvonly")


def test_reinvite_glare_gets_491_then_both_retry_after_the_rfc_delays() -> None:
    pair = make_pair()
    call_id = establish(pair)
    start = pair.now
    caller_request = pair.caller.reinvite(call_id, HOLD, now=pair.now)
    callee_request = pair.callee.reinvite(call_id, ANSWER, now=pair.now)
    # Both re-INVITEs cross on the wire.
    from_caller, from_callee = pair.caller.data_to_send(), pair.callee.data_to_send()
    pair.callee.receive_data(from_caller, pair.now)
    pair.caller.receive_data(from_callee, pair.now)
    pair.roundtrip_until_done()
    pending = [m for _, m in pair.log if isinstance(m, SipResponse) and m.status == 491]
    assert len(pending) == 2
    assert all(m.cseq.method == "INVITE" for m in pending)
    assert drain(pair.caller) == []
    assert drain(pair.callee) == []

    # RFC 3261 §14.1: the callee (not the Call-ID owner) retries within 0-2 s, the caller within 2.1-4 s.
    callee_retry = pair.callee.get_timer()
    caller_retry = pair.caller.get_timer()
    assert callee_retry is not None
    assert caller_retry is not None
    assert start <= callee_retry <= start + 2.0
    assert start + 2.1 <= caller_retry <= start + 4.0
    pair.advance(callee_retry)
    offered = drain(pair.caller)
    assert isinstance(offered[0], OfferReceived)
    assert offered[0].body == ANSWER
    pair.caller.answer_offer(call_id, offered[0].request_id, OFFER, now=pair.now)
    pair.roundtrip_until_done()
    assert any(
        isinstance(event, AnswerReceived) and event.request_id == callee_request
        for event in drain(pair.callee)
    )

    pair.advance(caller_retry)
    offered = drain(pair.callee)
    assert isinstance(offered[0], OfferReceived)
    assert offered[0].body == HOLD
    pair.callee.answer_offer(call_id, offered[0].request_id, HELD, now=pair.now)
    pair.roundtrip_until_done()
    assert any(
        isinstance(event, AnswerReceived) and event.request_id == caller_request
        for event in drain(pair.caller)
    )


def test_offers_are_queued_one_exchange_at_a_time() -> None:
    pair = make_pair()
    call_id = establish(pair)
    first = pair.caller.reinvite(call_id, HOLD, now=pair.now)
    second = pair.caller.reinvite(call_id, OFFER, now=pair.now)
    assert len(pair.transfer(pair.caller)) == 1  # the second waits for the first (§14.1)
    for request_id, answer in ((first, HELD), (second, ANSWER)):
        offered = next(e for e in drain(pair.callee) if isinstance(e, OfferReceived))
        pair.callee.answer_offer(call_id, offered.request_id, answer, now=pair.now)
        pair.roundtrip_until_done()
        answers = [e for e in drain(pair.caller) if isinstance(e, AnswerReceived)]
        assert [(a.request_id, a.body) for a in answers] == [(request_id, answer)]


def test_options_inside_and_outside_a_dialog() -> None:
    pair = make_pair()
    call_id = establish(pair)
    request_id = pair.caller.options(call_id=call_id, now=pair.now)
    [options] = pair.transfer(pair.caller)
    assert isinstance(options, SipRequest)
    assert options.to.tag is not None
    [ok] = pair.transfer(pair.callee)
    assert isinstance(ok, SipResponse)
    assert ok.status == 200
    assert "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO" in lines(ok)
    assert "Accept: application/sdp" in lines(ok)
    assert "Supported: timer" in lines(ok)
    [completed] = drain(pair.caller)
    assert isinstance(completed, RequestCompleted)
    assert (completed.call_id, completed.request_id, completed.status) == (call_id, request_id, 200)

    from media_worker.sip import SipUri

    target = SipUri.parse(f"sip:{VC_HOST}:5061;transport=tls")
    request_id = pair.caller.options(
        request_uri=target, from_uri=SipUri.parse("sip:+12065550100@192.0.2.10"), now=pair.now
    )
    [options] = pair.transfer(pair.caller)
    assert isinstance(options, SipRequest)
    assert options.to.tag is None
    assert options.call_id != call_id
    assert options.uri == f"sip:{VC_HOST}:5061;transport=tls"
    pair.transfer(pair.callee)
    [completed] = drain(pair.caller)
    assert isinstance(completed, RequestCompleted)
    assert completed.request_id == request_id
    assert completed.status == 200
    assert "UPDATE" in completed.headers.get_all("Allow")
    assert drain(pair.callee) == []  # answered automatically, nothing to tell the layer above


def test_info_is_answered_and_reported() -> None:
    pair = make_pair()
    call_id = establish(pair)
    request_id = pair.callee.info(
        call_id, content_type="application/dtmf-relay", body=b"Signal=5\r\nDuration=160\r\n", now=pair.now
    )
    pair.roundtrip_until_done()
    [info] = drain(pair.caller)
    assert isinstance(info, InfoReceived)
    assert info.body.startswith(b"Signal=5")
    [completed] = drain(pair.callee)
    assert isinstance(completed, RequestCompleted)
    assert (completed.request_id, completed.status) == (
        request_id,
        200,
    )


def test_requests_for_unknown_dialogs_get_481() -> None:
    pair = make_pair()
    call_id = establish(pair)
    pair.caller.bye(call_id, now=pair.now)
    bye = pair.caller.data_to_send()
    pair.callee.receive_data(bye, pair.now)
    pair.transfer(pair.callee)
    drain(pair.callee)
    pair.callee.receive_data(bye.replace(b"BYE ", b"INFO ", 1).replace(b" BYE\r\n", b" INFO\r\n"), pair.now)
    [gone] = pair.transfer(pair.callee)
    assert isinstance(gone, SipResponse)
    assert (gone.status, gone.reason) == (
        481,
        "Call/Transaction Does Not Exist",
    )
    pair.callee.receive_data(bye.replace(call_id.encode(), b"no-such-call"), pair.now)
    [gone] = pair.transfer(pair.callee)
    assert isinstance(gone, SipResponse)
    assert gone.status == 481
    assert gone.call_id == "no-such-call"


def test_peer_answering_481_ends_the_dialog() -> None:
    pair = make_pair()
    call_id = establish(pair)
    pair.callee.connection_lost()  # the callee forgets everything; a fresh one answers in its place
    drain(pair.callee)
    from media_worker.sip import SipConnection
    from tests.worker.sip.pair import callee_config, deterministic_urandom

    pair.callee = SipConnection(configuration=callee_config(), urandom=deterministic_urandom("fresh"))
    pair.caller.reinvite(call_id, HOLD, now=pair.now)
    pair.roundtrip_until_done()
    assert drain(pair.caller) == [
        DialogTerminated(call_id=call_id, by=Party.REMOTE, reason=TerminationReason.DIALOG_GONE, status=481)
    ]
    assert pair.caller.call_ids == ()


def test_lower_cseq_gets_500() -> None:
    pair = make_pair()
    call_id = establish(pair)
    pair.caller.info(call_id, content_type="text/plain", body=b"one", now=pair.now)
    info = pair.caller.data_to_send()
    pair.callee.receive_data(info, pair.now)
    pair.callee.data_to_send()
    stale = info.replace(b"z9hG4bK", b"z9hG4bKx")  # a new transaction reusing the old CSeq
    pair.callee.receive_data(stale, pair.now)
    [response] = pair.transfer(pair.callee)
    assert isinstance(response, SipResponse)
    assert response.status == 500


def test_bye_before_ack_waits_for_the_ack() -> None:
    pair = make_pair()
    from tests.worker.sip.pair import dial

    call_id = dial(pair)
    pair.transfer(pair.caller)
    pair.callee.answer(call_id, 200, now=pair.now, body=ANSWER)
    pair.callee.bye(call_id, now=pair.now)  # RFC 3261 §15: not before the ACK
    _trying, ok = pair.transfer(pair.callee)
    assert isinstance(ok, SipResponse)
    assert ok.status == 200
    pair.roundtrip_until_done()
    methods = [m.method for _, m in pair.log if isinstance(m, SipRequest)]
    assert methods == ["INVITE", "ACK", "BYE"]
    assert drain(pair.caller)[-1] == DialogTerminated(
        call_id=call_id, by=Party.REMOTE, reason=TerminationReason.BYE
    )


def test_offerless_reinvite_is_answered_with_our_current_description() -> None:
    pair = make_pair()
    call_id = establish(pair)
    pair.caller.info(call_id, content_type="text/plain", body=b"x", now=pair.now)
    info = pair.caller.data_to_send()
    pair.caller.options(call_id=call_id, now=pair.now)
    options = pair.caller.data_to_send()
    pair.callee.receive_data(info, pair.now)
    pair.callee.data_to_send()
    # Turn the OPTIONS into an offerless re-INVITE (same dialog, next CSeq).
    reinvite = options.replace(b"OPTIONS ", b"INVITE ", 1).replace(b" OPTIONS\r\n", b" INVITE\r\n")
    pair.callee.receive_data(reinvite, pair.now)
    trying, ok = pair.transfer(pair.callee)
    assert isinstance(trying, SipResponse)
    assert trying.status == 100
    assert isinstance(ok, SipResponse)
    assert ok.status == 200
    assert ok.body == ANSWER  # our unchanged description, as an offer
    assert "Content-Type: application/sdp" in lines(ok)


def test_update_offer_glare_gets_491() -> None:
    pair = make_pair()
    call_id = establish(pair)
    pair.caller.update(call_id, HOLD, now=pair.now)
    pair.callee.update(call_id, HELD, now=pair.now)
    from_caller, from_callee = pair.caller.data_to_send(), pair.callee.data_to_send()
    pair.callee.receive_data(from_caller, pair.now)
    pair.caller.receive_data(from_callee, pair.now)
    statuses = [
        m.status
        for m in pair.transfer(pair.caller) + pair.transfer(pair.callee)
        if isinstance(m, SipResponse)
    ]
    assert statuses == [491, 491]


def test_caller_that_stops_refreshing_is_hung_up_on() -> None:
    pair = make_pair()
    start = pair.now
    call_id = establish(pair)  # the caller refreshes (refresher=uac)
    pair.callee.handle_timer(start + 32)  # Timer L of the INVITE server transaction
    assert pair.callee.get_timer() == start + 1800 - 32
    pair.now = start + 1800 - 32
    pair.callee.handle_timer(pair.now)  # the caller's timers never ran: no refresh came
    pair.roundtrip_until_done()
    assert drain(pair.callee) == [
        DialogTerminated(
            call_id=call_id, by=Party.LOCAL, reason=TerminationReason.SESSION_TIMER_EXPIRED, status=200
        )
    ]
    assert drain(pair.caller) == [
        DialogTerminated(call_id=call_id, by=Party.REMOTE, reason=TerminationReason.BYE)
    ]


def test_unanswered_refresh_ends_the_dialog_with_bye() -> None:
    pair = make_pair()
    start = pair.now
    call_id = establish(pair)
    pair.now = start + 900
    pair.caller.handle_timer(pair.now)
    update = pair.caller.data_to_send()  # lost: the peer never answers
    assert update.startswith(b"UPDATE ")
    assert pair.caller.get_timer() == start + 900 + 32  # Timer F
    pair.now = start + 932
    pair.caller.handle_timer(pair.now)
    [bye] = pair.transfer(pair.caller)
    assert isinstance(bye, SipRequest)
    assert bye.method == "BYE"
    pair.transfer(pair.callee)
    assert drain(pair.caller) == [
        DialogTerminated(
            call_id=call_id, by=Party.LOCAL, reason=TerminationReason.REQUEST_TIMEOUT, status=200
        )
    ]


def test_unanswered_options_completes_with_408_and_ends_the_dialog() -> None:
    pair = make_pair()
    call_id = establish(pair)
    request_id = pair.caller.options(call_id=call_id, now=pair.now)
    pair.caller.data_to_send()  # lost
    pair.caller.handle_timer(pair.now + 32)
    [completed] = drain(pair.caller)
    assert isinstance(completed, RequestCompleted)
    assert (completed.request_id, completed.status, completed.method) == (request_id, 408, "OPTIONS")
    # RFC 3261 §12.2.1.2: no answer inside a dialog ends it.
    [bye] = parse_stream(pair.caller.data_to_send())
    assert isinstance(bye, SipRequest)
    assert bye.method == "BYE"
    assert call_id in pair.caller.call_ids
