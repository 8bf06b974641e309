"""SipConnection at its edges: bad input, keep-alives, retransmissions, misuse, connection loss, the trace."""

from __future__ import annotations

import pytest

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


def _invite_bytes() -> bytes:
    pair = make_pair()
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
