"""SipConnection at its edges: bad input, keep-alives, retransmissions, misuse, connection loss, the trace."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media_worker.sip import (
    PING,
    PONG,
    CallFailed,
    ConnectionFailed,
    DialogTerminated,
    FailureCategory,
    IncomingCall,
    LocalProtocolError,
    MessageRejected,
    Party,
    SipConnection,
    SipEvent,
    SipResponse,
    TerminationReason,
)
from tests.worker.sip.pair import (
    TOKEN,
    callee_config,
    deterministic_urandom,
    dial,
    drain,
    establish,
    lines,
    make_pair,
    parse_stream,
)


def _invite_bytes(seed: str = "") -> bytes:
    pair = make_pair(seed=seed)
    dial(pair)
    return pair.caller.data_to_send()


def _callee() -> SipConnection:
    return SipConnection(configuration=callee_config(), urandom=deterministic_urandom("x"))


@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_invite_fed_in_pieces_and_with_trailing_data(chunk: int) -> None:
    data = _invite_bytes() + PING
    callee = _callee()
    for start in range(0, len(data), chunk):
        callee.receive_data(data[start : start + chunk], 1.0)
    events = drain(callee)
    assert [type(event) for event in events] == [IncomingCall]
    out = callee.data_to_send()
    assert out.startswith(b"SIP/2.0 100 Trying\r\n")
    assert out.endswith(PONG) if chunk > 1 else True  # a ping split in two reads as two pongs (framing rule)


def test_retransmitted_invite_is_absorbed_and_the_last_response_resent() -> None:
    invite = _invite_bytes()
    callee = _callee()
    callee.receive_data(invite, 1.0)
    [incoming] = drain(callee)
    assert isinstance(incoming, IncomingCall)
    callee.answer(incoming.call_id, 180, now=1.0)
    callee.data_to_send()
    callee.receive_data(invite, 2.0)
    [again] = parse_stream(callee.data_to_send())
    assert isinstance(again, SipResponse)
    assert again.status == 180
    assert drain(callee) == []


def test_request_with_bad_header_gets_400_and_is_counted() -> None:
    bad = _invite_bytes().replace(b"Session-Expires: 1800", b"Session-Expires: soon", 1)
    callee = _callee()
    callee.receive_data(bad, 1.0)
    [rejected] = drain(callee)
    assert isinstance(rejected, MessageRejected)
    assert rejected.status == 400
    assert rejected.method == "INVITE"
    [response] = parse_stream(callee.data_to_send())
    assert isinstance(response, SipResponse)
    assert response.status == 400


def test_unframeable_stream_fails_the_connection_and_its_calls() -> None:
    pair = make_pair()
    call_id = establish(pair)
    pair.caller.receive_data(b"\x16\x03\x01 this is not SIP\r\n\r\n", pair.now)
    events = drain(pair.caller)
    assert isinstance(events[0], ConnectionFailed)
    assert events[1:] == [
        DialogTerminated(call_id=call_id, by=Party.REMOTE, reason=TerminationReason.CONNECTION_LOST)
    ]
    pair.caller.receive_data(b"SIP/2.0 200 OK\r\n", pair.now)  # ignored from now on
    assert drain(pair.caller) == []
    with pytest.raises(LocalProtocolError):
        dial(pair)


def test_connection_lost_fails_unanswered_calls() -> None:
    pair = make_pair()
    call_id = dial(pair)
    pair.caller.connection_lost()
    assert drain(pair.caller) == [
        CallFailed(
            call_id=call_id, status=503, reason="Connection Lost", category=FailureCategory.UNAVAILABLE
        )
    ]
    assert pair.caller.get_timer() is None


def test_keepalive_ping_is_answered_with_pong() -> None:
    callee = _callee()
    callee.send_ping()
    assert callee.data_to_send() == PING
    callee.receive_data(PING, 1.0)
    assert callee.data_to_send() == PONG
    callee.receive_data(PONG, 1.0)
    assert callee.data_to_send() == b""
    assert drain(callee) == []


def test_stray_response_is_dropped_and_counted() -> None:
    pair = make_pair()
    call_id = establish(pair)
    pair.caller.bye(call_id, now=pair.now)
    pair.roundtrip_until_done()
    drain(pair.caller)
    ok = [m for _, m in pair.log if isinstance(m, SipResponse)][-1]
    pair.caller.receive_data(bytes(ok), pair.now)
    [rejected] = drain(pair.caller)
    assert isinstance(rejected, MessageRejected)
    assert rejected.status is None
    assert pair.caller.data_to_send() == b""


@pytest.mark.parametrize(
    ("edit", "status"),
    [
        ((b"INVITE sip:", b"SUBSCRIBE sip:"), 405),
        ((b"Supported: timer\r\n", b"Supported: timer\r\nRequire: 100rel\r\n"), 420),
        ((b"Session-Expires: 1800\r\n", b"Session-Expires: 60\r\n"), 422),
        ((b"Contact: <sip:+12065550100@192.0.2.10:40001;transport=tls>\r\n", b""), 400),
        ((b"INVITE sip:", b"BYE sip:"), 481),
    ],
)
def test_out_of_dialog_requests_we_refuse(edit: tuple[bytes, bytes], status: int) -> None:
    data = _invite_bytes()
    old, new = edit
    data = data.replace(old, new, 1)
    if old.startswith(b"INVITE"):
        data = data.replace(b" INVITE\r\n", b" " + new.split(b" ")[0] + b"\r\n", 1)
    callee = _callee()
    callee.receive_data(data, 1.0)
    [response] = parse_stream(callee.data_to_send())
    assert isinstance(response, SipResponse)
    assert response.status == status
    if status == 405:
        assert any(line.startswith("Allow: ") for line in lines(response))
    if status == 422:
        assert "Min-SE: 90" in lines(response)
    assert drain(callee) == []


def test_misuse_raises_local_protocol_error() -> None:
    pair = make_pair()
    with pytest.raises(LocalProtocolError):
        pair.caller.bye("no-such-call", now=pair.now)
    call_id = dial(pair)
    with pytest.raises(LocalProtocolError):
        pair.caller.bye(call_id, now=pair.now)  # not answered: cancel() instead
    with pytest.raises(LocalProtocolError):
        pair.caller.reinvite(call_id, b"v=0\r\n", now=pair.now)
    with pytest.raises(LocalProtocolError):
        pair.caller.answer(call_id, 200, now=pair.now)  # we are not the callee
    with pytest.raises(LocalProtocolError):
        pair.caller.invite(
            request_uri=dial.__globals__["REQUEST_URI"],
            from_uri=dial.__globals__["FROM_URI"],
            to=dial.__globals__["TO_URI"],
            body=b"",
            now=pair.now,
            headers=[("Call-ID", "x")],
        )
    with pytest.raises(LocalProtocolError):
        pair.caller.invite(
            request_uri=dial.__globals__["REQUEST_URI"],
            from_uri=dial.__globals__["FROM_URI"],
            to=dial.__globals__["TO_URI"],
            body=b"",
            now=pair.now,
            min_se=60,
        )
    pair.transfer(pair.caller)
    with pytest.raises(LocalProtocolError):
        pair.callee.reject(call_id, 200, now=pair.now)
    with pytest.raises(LocalProtocolError):
        pair.callee.answer_offer(call_id, 99, b"v=0\r\n", now=pair.now)


def test_trace_and_reprs_never_show_the_join_token() -> None:
    pair = make_pair()
    call_id = establish(pair)
    assert pair.caller.trace[0].direction == "sent"
    assert pair.caller.trace[0].call_id == call_id
    text = repr(pair.caller.trace) + repr(pair.callee.trace)
    assert "INVITE sip:17035550122@" in text
    assert TOKEN not in text
    assert TOKEN.replace("=", "%3D") not in text
    assert TOKEN not in repr(drain(pair.callee))


def test_from_must_be_e164() -> None:
    from media_worker.sip import SipUri

    pair = make_pair()
    with pytest.raises(LocalProtocolError, match=r"E\.164"):
        pair.caller.invite(
            request_uri=SipUri.parse("sip:17035550122@vc.example"),
            from_uri=SipUri.parse("sip:alice@192.0.2.10"),
            to=SipUri.parse("sip:17035550122@vc.example"),
            body=b"",
            now=pair.now,
        )


def test_retransmitted_invite_after_2xx_is_absorbed_silently() -> None:
    invite = _invite_bytes()
    callee = _callee()
    callee.receive_data(invite, 1.0)
    [incoming] = drain(callee)
    callee.answer(incoming.call_id, 200, now=1.0, body=b"v=0\r\n")  # type: ignore[attr-defined]  # IncomingCall
    callee.data_to_send()
    callee.receive_data(invite, 1.1)
    assert callee.data_to_send() == b""
    assert drain(callee) == []


def test_cancel_for_an_unknown_transaction_gets_481() -> None:
    invite = _invite_bytes()
    cancel = invite.split(b"\r\n\r\n")[0].replace(b"INVITE sip:", b"CANCEL sip:", 1)
    cancel = cancel.replace(b" INVITE\r\n", b" CANCEL\r\n").replace(
        b"Content-Length: 81", b"Content-Length: 0"
    )
    cancel = cancel.replace(b"Content-Type: application/sdp\r\n", b"") + b"\r\n\r\n"
    callee = _callee()
    callee.receive_data(cancel, 1.0)
    [response] = parse_stream(callee.data_to_send())
    assert isinstance(response, SipResponse)
    assert response.status == 481


# -- malformed messages on an intact stream: the message is refused, the connection and its calls go on --

BAD_FROM_OPTIONS = (
    b"OPTIONS sip:17035550122@vc.example SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS 192.0.2.10:40001;branch=z9hG4bKbad1\r\n"
    b"From: <sip:+12065550100@192.0.2.10;tag=f1\r\n"  # unterminated '<'
    b"To: <sip:17035550122@vc.example>\r\n"
    b"Call-ID: bad-1\r\n"
    b"CSeq: 7 OPTIONS\r\n"
    b"Max-Forwards: 70\r\n"
    b"Content-Length: 0\r\n\r\n"
)


@pytest.mark.parametrize("chunk", [1, 13, 100_000])
def test_bad_request_between_two_good_ones_gets_400_and_both_good_ones_are_processed(chunk: int) -> None:
    first, second = _invite_bytes("one"), _invite_bytes("two")
    stream = first + BAD_FROM_OPTIONS + second
    callee = _callee()

    for start in range(0, len(stream), chunk):
        callee.receive_data(stream[start : start + chunk], 1.0)

    events = drain(callee)
    assert [type(event) for event in events] == [IncomingCall, MessageRejected, IncomingCall]
    rejected = events[1]
    assert isinstance(rejected, MessageRejected)
    assert (rejected.status, rejected.method, rejected.call_id) == (400, "OPTIONS", "bad-1")
    assert "unterminated" in rejected.reason
    assert events[0].call_id != events[2].call_id  # type: ignore[attr-defined]  # IncomingCall
    responses = parse_stream(callee.data_to_send())
    assert [r.status for r in responses if isinstance(r, SipResponse)] == [100, 400, 100]
    bad_request = responses[1]
    assert lines(bad_request)[0] == "SIP/2.0 400 Bad Request"
    # §8.2.6.2: the usable fields are copied (To gains a tag); the unparseable From is left out.
    assert bad_request.headers.get("Via") == "SIP/2.0/TLS 192.0.2.10:40001;branch=z9hG4bKbad1"
    assert bad_request.to.tag is not None
    assert str(bad_request.to.uri) == "sip:17035550122@vc.example"
    assert (bad_request.call_id, str(bad_request.cseq)) == ("bad-1", "7 OPTIONS")
    assert "From" not in bad_request.headers
    callee.answer(events[0].call_id, 180, now=1.0)  # type: ignore[attr-defined]  # IncomingCall
    callee.answer(events[2].call_id, 180, now=1.0)  # type: ignore[attr-defined]  # IncomingCall
    assert [r.status for r in parse_stream(callee.data_to_send()) if isinstance(r, SipResponse)] == [180, 180]


@pytest.mark.parametrize(
    ("edit", "status"),
    [
        ((b"SIP/2.0\r\nVia", b"SIP/3.0\r\nVia"), 505),  # §21.5.6 Version Not Supported
        ((b"CSeq: 7 OPTIONS", b"CSeq: 7 INVITE"), 400),  # method mismatch: CSeq still copied
        ((b"CSeq: 7 OPTIONS", b"CSeq: seven OPTIONS"), None),  # no usable CSeq: cannot answer
        ((b"Call-ID: bad-1\r\n", b""), None),  # no Call-ID: cannot answer
        ((b"branch=z9hG4bKbad1", b";;"), None),  # no usable Via: cannot answer
        ((b"OPTIONS sip:", b"ACK sip:"), None),  # an ACK is never answered (§17)
    ],
    ids=["version", "cseq-mismatch", "cseq-garbage", "no-call-id", "bad-via", "ack"],
)
def test_malformed_request_is_answered_only_when_its_headers_allow(
    edit: tuple[bytes, bytes], status: int | None
) -> None:
    callee = _callee()

    callee.receive_data(BAD_FROM_OPTIONS.replace(*edit) + PING, 1.0)

    [rejected] = drain(callee)
    assert isinstance(rejected, MessageRejected)
    assert rejected.status == status
    out = callee.data_to_send()
    assert out.endswith(PONG)  # the stream is still read after the bad message
    responses = parse_stream(out)
    assert [r.status for r in responses if isinstance(r, SipResponse)] == ([] if status is None else [status])


def test_malformed_response_is_dropped_and_the_call_goes_on() -> None:
    pair = make_pair()
    call_id = establish(pair)
    bad_response = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 192.0.2.10:40001;;branch=\r\n"
        b"From: <sip:+12065550100@192.0.2.10>;tag=x\r\nTo: <sip:17035550122@vc.example>;tag=y\r\n"
        b"Call-ID: " + call_id.encode() + b"\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n"
    )

    pair.caller.receive_data(bad_response + PING, pair.now)

    [rejected] = drain(pair.caller)
    assert isinstance(rejected, MessageRejected)
    assert (rejected.status, rejected.method, rejected.call_id) == (None, "BYE", call_id)
    assert pair.caller.data_to_send() == PONG
    assert pair.caller.call_ids == (call_id,)
    pair.caller.bye(call_id, now=pair.now)
    pair.roundtrip_until_done()
    assert drain(pair.caller) == [
        DialogTerminated(call_id=call_id, by=Party.LOCAL, reason=TerminationReason.BYE, status=200)
    ]


def test_malformed_request_in_an_established_dialog_leaves_the_dialog_alone() -> None:
    pair = make_pair()
    call_id = establish(pair)
    bad_bye = BAD_FROM_OPTIONS.replace(b"OPTIONS", b"BYE").replace(b"bad-1", call_id.encode())

    pair.callee.receive_data(bad_bye, pair.now)

    [rejected] = drain(pair.callee)
    assert isinstance(rejected, MessageRejected)
    assert (rejected.status, rejected.method, rejected.call_id) == (400, "BYE", call_id)
    assert pair.callee.call_ids == (call_id,)
    received, sent = pair.callee.trace[-2:]
    assert (received.direction, received.summary) == ("received", "BYE sip:17035550122@vc.example SIP/2.0")
    assert (sent.direction, sent.summary) == ("sent", "400 Bad Request")


STREAM_PIECES = [
    b"INVITE sip:a@b.example SIP/2.0\r\n",
    b"OPTIONS sip:a@b.example SIP/2.0\r\n",
    b"SIP/2.0 200 OK\r\n",
    b"SIP/2.0 180 Ringing\r\n",
    b"Via: SIP/2.0/TLS 192.0.2.1;branch=z9hG4bK1\r\n",
    b"From: <sip:a@b.example>;tag=1\r\n",
    b"To: <sip:c@d.example>\r\n",
    b"Call-ID: c1\r\n",
    b"CSeq: 1 INVITE\r\n",
    b"CSeq: x\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: 4\r\n",
    b"Content-Type: application/sdp\r\n",
    b"\r\n",
    b"\r\n\r\n",
    b"v=0\r\n",
    BAD_FROM_OPTIONS,
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.sampled_from(STREAM_PIECES),
            st.sampled_from([_invite_bytes(), _invite_bytes("b")[:300]]),
        ),
        max_size=20,
    ),
    st.integers(1, 64),
)
def test_arbitrary_bytes_never_raise_out_of_receive_data(pieces: list[bytes], chunk: int) -> None:
    callee = _callee()
    stream = b"".join(pieces)

    for start in range(0, len(stream), chunk):
        callee.receive_data(stream[start : start + chunk], 1.0)
        assert isinstance(callee.data_to_send(), bytes)

    events = drain(callee)
    assert all(isinstance(event, SipEvent) for event in events)
    assert sum(isinstance(event, ConnectionFailed) for event in events) <= 1


def test_a_response_without_via_is_rejected_not_raised() -> None:
    # Found by the property test: a response with no Via used to raise IndexError out of receive_data.
    pair = make_pair()
    response = b"SIP/2.0 200 OK\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nFrom: <sip:a@b>;tag=1\r\n"
    pair.caller.receive_data(response + b"To: <sip:c@d>\r\nContent-Length: 0\r\n\r\n", 0.0)
    rejected = [e for e in drain(pair.caller) if isinstance(e, MessageRejected)]
    assert len(rejected) == 1
    assert "Via" in rejected[0].reason
