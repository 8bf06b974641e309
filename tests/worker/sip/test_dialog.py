"""RFC 3261 §12 dialog state: creation from both sides, route sets, in-dialog requests, CSeq rules."""

from __future__ import annotations

import pytest

from media_worker.sip import RemoteProtocolError, SipRequest, build_request, build_response
from media_worker.sip.dialog import Dialog, DialogState


def _invite(*, record_route: tuple[str, ...] = ()) -> SipRequest:
    return build_request(
        "INVITE",
        "sip:callee@example.com",
        headers=[
            ("Via", "SIP/2.0/TLS 192.0.2.10:40001;rport;branch=z9hG4bK1"),
            ("Max-Forwards", "70"),
            ("From", "<sip:+12065550100@192.0.2.10>;tag=local1"),
            ("To", "<sip:callee@example.com>"),
            ("Call-ID", "c1"),
            ("CSeq", "100 INVITE"),
            ("Contact", "<sip:+12065550100@192.0.2.10:40001;transport=tls>"),
            ("Allow", "INVITE, ACK, BYE"),
            ("Supported", "timer"),
            *[("Record-Route", value) for value in record_route],
        ],
    )


RECORD_ROUTE = ("<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>")


def _uac_dialog(status: int = 200) -> Dialog:
    invite = _invite()
    response = build_response(
        invite,
        status,
        to_tag="remote1",
        headers=[
            ("Record-Route", RECORD_ROUTE[0]),
            ("Record-Route", RECORD_ROUTE[1]),
            ("Contact", "<sip:callee@203.0.113.5:5061;transport=tls>"),
            ("Allow", "INVITE, ACK, BYE, UPDATE"),
        ],
    )
    return Dialog.from_uac_response(invite, response)


def test_uac_dialog_reverses_the_record_route_and_targets_the_contact() -> None:
    dialog = _uac_dialog()
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.is_caller
    assert (dialog.local_tag, dialog.remote_tag, dialog.local_seq, dialog.remote_seq) == (
        "local1",
        "remote1",
        100,
        None,
    )
    assert [str(route.uri) for route in dialog.route_set] == [
        "sip:p1.example.com;lr",
        "sip:p2.example.com;lr",
    ]
    assert dialog.remote_target == "sip:callee@203.0.113.5:5061;transport=tls"
    assert "UPDATE" in dialog.peer_allow
    assert _uac_dialog(180).state is DialogState.EARLY


def test_in_dialog_request_uses_loose_routing() -> None:
    dialog = _uac_dialog()
    seq = dialog.next_local_seq()
    bye = dialog.build_request("BYE", via="SIP/2.0/TLS 192.0.2.10:40001;rport;branch=z9hG4bK2", seq=seq)
    assert bye.uri == "sip:callee@203.0.113.5:5061;transport=tls"
    assert bye.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert bye.cseq.seq == 101
    assert bye.from_.tag == "local1"
    assert bye.to.tag == "remote1"
    assert bye.headers.get("Max-Forwards") == "70"


def test_strict_router_becomes_the_request_uri() -> None:
    dialog = _uac_dialog()
    dialog.route_set = (dialog.route_set[0].__class__.parse("<sip:strict.example.com>"),)
    request = dialog.build_request("BYE", via="SIP/2.0/TLS h;branch=z9hG4bK3", seq=dialog.next_local_seq())
    assert request.uri == "sip:strict.example.com"
    assert request.headers.get_all("Route") == ["<sip:callee@203.0.113.5:5061;transport=tls>"]


def test_uas_dialog_keeps_record_route_order_and_the_remote_cseq() -> None:
    invite = _invite(record_route=RECORD_ROUTE)
    dialog = Dialog.from_uas_request(invite, local_tag="uas1", local_seq=5000)
    assert not dialog.is_caller
    assert dialog.remote_seq == 100
    assert [str(route.uri) for route in dialog.route_set] == [
        "sip:p2.example.com;lr",
        "sip:p1.example.com;lr",
    ]
    assert dialog.remote_target == "sip:+12065550100@192.0.2.10:40001;transport=tls"
    assert dialog.local_party.tag == "uas1"
    assert dialog.remote_party.tag == "local1"
    assert dialog.peer_supported == frozenset({"timer"})


def test_uas_dialog_needs_a_contact() -> None:
    invite = _invite()
    invite.headers.remove("Contact")
    with pytest.raises(RemoteProtocolError):
        Dialog.from_uas_request(invite, local_tag="uas1", local_seq=1)


def test_remote_cseq_must_increase() -> None:
    dialog = Dialog.from_uas_request(_invite(), local_tag="uas1", local_seq=1)
    assert not dialog.accept_remote_cseq(100)
    assert not dialog.accept_remote_cseq(99)
    assert dialog.accept_remote_cseq(105)
    assert dialog.remote_seq == 105


def test_target_refresh_and_matching() -> None:
    dialog = _uac_dialog()
    update = dialog.build_request(
        "UPDATE",
        via="SIP/2.0/TLS h;branch=z9hG4bK4",
        seq=dialog.next_local_seq(),
        headers=[("Contact", "<sip:me@192.0.2.99>")],
    )
    assert dialog.matches(update, incoming_request=False)
    incoming = build_request(
        "BYE",
        "sip:x@y",
        headers=[
            ("Via", "SIP/2.0/TLS h;branch=z9hG4bK5"),
            ("From", "<sip:callee@example.com>;tag=remote1"),
            ("To", "<sip:+12065550100@192.0.2.10>;tag=local1"),
            ("Call-ID", "c1"),
            ("CSeq", "9 BYE"),
            ("Contact", "<sip:callee@203.0.113.77;transport=tls>"),
        ],
    )
    assert dialog.matches(incoming, incoming_request=True)
    dialog.refresh_target(incoming.headers)
    assert dialog.remote_target == "sip:callee@203.0.113.77;transport=tls"
