"""RFC 3261 §17 transactions over a reliable transport, one state machine at a time."""

from __future__ import annotations

import pytest

from media_worker.sip import LocalProtocolError, SipRequest, SipResponse, build_request, build_response
from media_worker.sip.transaction import (
    ClientState,
    ClientTransaction,
    ServerState,
    ServerTransaction,
    client_key,
    server_key,
)


def _request(method: str = "INVITE", branch: str = "z9hG4bKabc") -> SipRequest:
    return build_request(
        method,
        "sip:callee@example.com;transport=tls",
        headers=[
            ("Via", f"SIP/2.0/TLS 192.0.2.10:40001;rport;branch={branch}"),
            ("Max-Forwards", "70"),
            ("From", "<sip:+12065550100@192.0.2.10>;tag=f1"),
            ("To", "<sip:callee@example.com>"),
            ("Call-ID", "c1"),
            ("CSeq", f"7 {method}"),
            ("Route", "<sip:proxy.example.com;lr>"),
        ],
    )


def _response(request: SipRequest, status: int) -> SipResponse:
    return build_response(request, status, to_tag="t1" if status > 100 else None)


class _Recorder:
    def __init__(self) -> None:
        self.responses: list[int] = []
        self.timeouts: list[float] = []

    def on_response(self, response: SipResponse, now: float) -> None:
        self.responses.append(response.status)

    def on_timeout(self, now: float) -> None:
        self.timeouts.append(now)


def _client(method: str = "INVITE") -> tuple[ClientTransaction, _Recorder]:
    recorder = _Recorder()
    tx = ClientTransaction(
        _request(method), now=10.0, on_response=recorder.on_response, on_timeout=recorder.on_timeout
    )
    return tx, recorder


def _state(tx: ClientTransaction) -> ClientState:
    return tx.state  # read through a call: the state changes behind mypy's narrowing


def test_invite_client_timer_b_runs_only_until_a_provisional() -> None:
    tx, _ = _client()
    assert _state(tx) is ClientState.CALLING
    assert tx.deadline == 10.0 + 32
    outcome = tx.receive_response(_response(tx.request, 180), 11.0)
    assert outcome.deliver
    assert outcome.ack is None
    assert _state(tx) is ClientState.PROCEEDING
    assert tx.deadline is None


def test_invite_client_times_out_with_timer_b() -> None:
    tx, _ = _client()
    assert not tx.handle_timer(41.9)
    assert tx.handle_timer(42.0)
    assert tx.terminated


def test_invite_client_acks_non_2xx_itself_and_ends_at_once_over_tls() -> None:
    tx, _ = _client()
    outcome = tx.receive_response(_response(tx.request, 486), 11.0)
    ack = outcome.ack
    assert outcome.deliver
    assert ack is not None
    assert tx.terminated  # Timer D = 0 for reliable transports
    assert ack.method == "ACK"
    assert ack.uri == tx.request.uri
    assert ack.cseq.seq == 7
    assert ack.cseq.method == "ACK"
    assert ack.vias[0].branch == "z9hG4bKabc"
    assert ack.to.tag == "t1"
    assert ack.headers.get_all("Route") == ["<sip:proxy.example.com;lr>"]
    again = tx.receive_response(_response(tx.request, 486), 11.5)
    assert not again.deliver
    assert again.ack is not None


def test_invite_client_hands_2xx_to_the_dialog_without_acking() -> None:
    tx, _ = _client()
    outcome = tx.receive_response(_response(tx.request, 200), 11.0)
    assert outcome.deliver
    assert outcome.ack is None
    assert tx.terminated


def test_cancel_bounds_the_invite_by_64_t1() -> None:
    tx, _ = _client()
    tx.receive_response(_response(tx.request, 180), 11.0)
    tx.cancel_requested(20.0)
    assert tx.deadline == 52.0
    assert tx.handle_timer(52.0)


def test_non_invite_client_timer_f_keeps_running_while_proceeding() -> None:
    tx, _ = _client("BYE")
    assert _state(tx) is ClientState.TRYING
    tx.receive_response(_response(tx.request, 100), 11.0)
    assert _state(tx) is ClientState.PROCEEDING
    assert tx.deadline == 42.0
    assert tx.handle_timer(42.0)


def test_non_invite_client_completes_on_final() -> None:
    tx, _ = _client("OPTIONS")
    outcome = tx.receive_response(_response(tx.request, 200), 11.0)
    assert outcome.deliver
    assert outcome.ack is None
    assert tx.terminated  # Timer K = 0


def test_invite_server_resends_its_last_response_to_retransmissions() -> None:
    request = _request()
    tx = ServerTransaction(request, now=1.0)
    assert tx.receive_request(request, 1.1) is None  # nothing sent yet
    tx.respond(_response(request, 180), 1.2)
    again = tx.receive_request(request, 1.3)
    assert again is not None
    assert again.status == 180
    tx.respond(_response(request, 486), 1.4)
    again = tx.receive_request(request, 1.5)
    assert again is not None
    assert again.status == 486
    assert tx.state is ServerState.COMPLETED
    assert tx.deadline == 1.4 + 32  # Timer H
    tx.receive_request(_request("ACK"), 1.6)
    assert tx.terminated  # Timer I = 0 for reliable transports


def test_invite_server_absorbs_retransmissions_after_2xx() -> None:
    request = _request()
    tx = ServerTransaction(request, now=1.0)
    tx.respond(_response(request, 200), 2.0)
    assert tx.state is ServerState.ACCEPTED
    assert tx.deadline == 34.0  # RFC 6026 Timer L
    assert tx.receive_request(request, 3.0) is None
    with pytest.raises(LocalProtocolError):
        tx.respond(_response(request, 500), 3.0)
    tx.handle_timer(34.0)
    assert tx.terminated


def test_invite_server_gives_up_waiting_for_ack_after_timer_h() -> None:
    request = _request()
    tx = ServerTransaction(request, now=1.0)
    tx.respond(_response(request, 404), 2.0)
    tx.handle_timer(33.9)
    assert not tx.terminated
    tx.handle_timer(34.0)
    assert tx.terminated


def test_non_invite_server_ends_with_its_final_response() -> None:
    request = _request("BYE")
    tx = ServerTransaction(request, now=1.0)
    assert tx.state is ServerState.TRYING
    assert tx.receive_request(request, 1.1) is None
    tx.respond(_response(request, 200), 1.2)
    assert tx.terminated  # Timer J = 0 for reliable transports


def test_keys_match_requests_responses_ack_and_cancel() -> None:
    invite = _request()
    assert client_key(invite) == client_key(_response(invite, 200)) == ("z9hG4bKabc", "INVITE")
    assert server_key(_request("ACK")) == server_key(invite)
    assert server_key(_request("CANCEL"))[:2] == server_key(invite)[:2]
    assert server_key(_request("CANCEL"))[2] == "CANCEL"
    old_style = server_key(_request(branch="1234"))
    assert old_style[0] == "1234|c1|7"
