"""Torture messages in the spirit of RFC 4475 §3.1 and §3.3, written for this project.

Each fixture names the RFC 4475 case it imitates. Where RFC 4475 lets an element either accept or reject a
message, the choice made here is stated next to the case.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from media_worker.sip.exceptions import ParseError
from media_worker.sip.framing import StreamFramer
from media_worker.sip.message import CSeq, SipMessage, SipRequest, SipResponse, parse_message

TORTURE = Path(__file__).parents[2] / "fixtures" / "sip" / "torture"


def load_fixture(path: Path) -> bytes:
    """Fixtures are stored with LF line endings; SIP needs CRLF."""
    return path.read_bytes().replace(b"\n", b"\r\n")


def request(message: SipMessage) -> SipRequest:
    assert isinstance(message, SipRequest)
    return message


def response(message: SipMessage) -> SipResponse:
    assert isinstance(message, SipResponse)
    return message


def check_tolerant_invite(message: SipMessage) -> None:
    # §3.1.1.1 (wsinv): compact forms, folding, odd LWS, case-mixed names, leading zeros, empty values.
    invite = request(message)
    assert invite.to.tag == "7a1bd"
    assert invite.from_.display_name == 'Dave "the \\ Diver"'
    assert invite.from_.tag == "55ffe0"
    assert invite.headers.get("Max-Forwards") == "0069"
    assert invite.call_id == "tolerant.4417a@192.0.2.7"
    assert invite.cseq == CSeq(11, "INVITE")
    assert [(via.transport, via.host, via.branch) for via in invite.vias] == [
        ("UDP", "192.0.2.7", "z9hG4bKtolerant1"),
        ("TCP", "relay.example.net", "z9hG4bKrelay2"),
        ("UDP", "198.51.100.200", "z9hG4bKlast3"),
    ]
    assert invite.headers.get("Subject") == ""
    assert invite.headers.get("X-Folded-Thing") == "first part second part"
    assert invite.headers.get_all("Supported") == ["timer", "100rel"]
    assert invite.content_type == "application/sdp"
    assert invite.body.startswith(b"v=0\r\n")
    (contact,) = invite.headers.get_all("Contact")
    assert contact.startswith('"Carol \\"C\\" Contact"')


def check_token_chars(message: SipMessage) -> None:
    # §3.1.1.2 (intmeth): every token character in method, header names, parameters; 2**31-1 CSeq.
    weird = request(message)
    assert weird.method == "Do-It.Now!%*_+`'~0123456789"
    assert weird.cseq.seq == 2**31 - 1
    assert weird.uri_parsed().user == "weird.user~(ok!)&yes+$/;x=1"
    assert weird.from_.display_name == "plain words~` only'+_ here*%!.-"
    assert weird.from_.tag == "t'`*%!-.~"
    assert weird.headers.get("Header.With!Odd%Name*_+`'~") == "value"


def check_escaped_uri(message: SipMessage) -> None:
    # §3.1.1.3 (esc01): %-escapes in user part and parameters decode.
    invite = request(message)
    assert invite.uri_parsed().user == "sips:eve@example.org"
    assert invite.uri_parsed().param("tok") == "a=b"
    assert invite.from_.uri.user == "frank"


def check_escaped_null(message: SipMessage) -> None:
    # §3.1.1.4 (escnull): an escaped NUL is legal inside a URI.
    assert request(message).to.uri.user == "zero-\x00-zero"


def check_percent_not_escape(message: SipMessage) -> None:
    # §3.1.1.5 (esc02): '%' in tokens and quoted strings is literal, not an escape.
    publish = request(message)
    assert publish.method == "PUB%4CISH"
    assert publish.to.display_name == "%Q%41"
    assert publish.from_.param("%odd") == "%v%"


def check_semicolon_user(message: SipMessage) -> None:
    # §3.1.1.10 (semiuri): ';' in the user part belongs to the user, not to URI parameters.
    uri = request(message).uri_parsed()
    assert uri.user == "henry;cic=+1.234;x=h@example.org"
    assert uri.params == ()


def check_unknown_scheme(message: SipMessage) -> None:
    # §3.3.2 (unkscm) and §3.3.4 (unksm2): syntactically valid; the application answers 416 if it cares.
    options = request(message)
    assert options.uri == "neverheardofit:opaque-stuff/with!chars"
    with pytest.raises(ParseError):
        options.uri_parsed()
    with pytest.raises(ParseError):
        _ = options.to  # NameAddr holds sip/sips only
    assert options.headers.get("Contact") == "<mailto:jack@example.com>"


def check_unusual_reason(message: SipMessage) -> None:
    # §3.1.1.12 (unreason): UTF-8 and arithmetic in the reason phrase.
    assert response(message).reason == "= 7 × 6 — très bien, всё хорошо 好"


def check_empty_reason(message: SipMessage) -> None:
    # §3.1.1.13 (noreason): "SIP/2.0 100 " with an empty phrase.
    assert (response(message).status, response(message).reason) == (100, "")


def check_multiple_values(message: SipMessage) -> None:
    # §7.3.1: comma lists and repeated fields are equivalent; quoted commas are not separators.
    invite = request(message)
    assert [via.branch for via in invite.vias] == ["z9hG4bKmv2", "z9hG4bKmv1", "z9hG4bKmv0"]
    assert invite.vias[2].host == "[2001:db8::9]"
    assert invite.vias[2].param("received") == "2001:db8::9"
    assert invite.headers.get_all("Route")[1] == '"Proxy, Two" <sip:proxy2.example.com;lr>'
    assert len(invite.headers.get_all("Record-Route")) == 2
    assert invite.headers.get_all("Allow") == ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE"]
    assert invite.headers.get_all("Supported") == ["timer", "100rel", "replaces"]
    assert len(invite.headers.get_all("WWW-Authenticate")) == 1
    assert invite.from_.display_name == "Nils, Jr."


def check_long_values(message: SipMessage) -> None:
    # §3.1.1.8 (longreq): long header values, many Vias, long URI user part.
    invite = request(message)
    assert len(invite.vias) == 41
    assert invite.uri_parsed().user == "x" * 500
    assert len(invite.call_id) == 2000 + len("@example.com")
    assert len(invite.from_.tag or "") == 1 + 16 * 64


def check_no_space_display(message: SipMessage) -> None:
    # §3.1.1.6 (lwsdisp): no LWS between display name and '<'.
    options = request(message)
    assert options.to.display_name == "Pat"
    assert options.from_.display_name == "Quinn"


def check_odd_transports(message: SipMessage) -> None:
    # §3.1.1.11 (transports): unknown transports in Via; Max-Forwards 0 (§3.3.12); Content-Type params
    # (§3.3.13).
    options = request(message)
    assert [via.transport for via in options.vias] == ["SCTP", "TLS-SCTP", "WSS", "MADE-UP"]
    assert options.headers.get("Max-Forwards") == "0"
    assert options.content_type == 'text/plain ; charset = "utf-8"'
    assert options.body == b"just a note\r\n"


def check_bad_date_tolerated(message: SipMessage) -> None:
    # §3.1.2.12 (baddate) says an element MAY accept a bad Date: we never interpret Date, so we accept it.
    assert request(message).headers.get("Date") == "Sat, 13 Nov 2010 23:29:00 MARS"


VALID: dict[str, Callable[[SipMessage], None]] = {
    "tolerant_invite": check_tolerant_invite,
    "token_chars": check_token_chars,
    "escaped_uri": check_escaped_uri,
    "escaped_null": check_escaped_null,
    "percent_not_escape": check_percent_not_escape,
    "semicolon_user": check_semicolon_user,
    "unknown_scheme": check_unknown_scheme,
    "unusual_reason": check_unusual_reason,
    "empty_reason": check_empty_reason,
    "multiple_values": check_multiple_values,
    "long_values": check_long_values,
    "no_space_display": check_no_space_display,
    "odd_transports": check_odd_transports,
    "bad_date_tolerated": check_bad_date_tolerated,
}

# name -> (RFC 4475 case it imitates, note on the decision)
INVALID: dict[str, str] = {
    "content_length_too_big": "§3.1.2.2 clerr: body shorter than Content-Length",
    "content_length_negative": "§3.1.2.3 ncl: negative Content-Length",
    "missing_mandatory": "§3.3.1 insuf: no To, From or Call-ID",
    "cseq_method_mismatch": "§3.1.2.17 mismatch01: CSeq method differs from request method",
    "cseq_unknown_method_mismatch": "§3.1.2.18 mismatch02: unknown method, CSeq says INVITE",
    "cseq_not_numeric": "§3.1.2 non-numeric CSeq",
    "cseq_overlarge": "§3.1.2.4 scalar02: CSeq beyond 2**31-1",
    "max_forwards_overlarge": "§3.1.2.4 scalar02: Max-Forwards beyond 255",
    "expires_overlarge": "§3.1.2.4 scalar02: Expires beyond 2**32-1",
    "status_overlarge": "§3.1.2.19 bigcode: status code of ten digits",
    "unterminated_quote": "§3.1.2.6 quotbal: unterminated quoted display name",
    "angle_request_uri": "§3.1.2.7 ltgtruri: Request-URI enclosed in <>",
    "space_in_request_uri": "§3.1.2.8 lwsruri: LWS inside the Request-URI",
    "double_space_start_line": "§3.1.2.9 lwsstart: several SP between elements",
    "trailing_space_start_line": "§3.1.2.10 trws: SP at the end of the Request-Line",
    "headers_in_request_uri": "§3.1.2.11 escruri: URI headers in a Request-URI; the RFC allows either "
    "rejecting or ignoring them, we reject (400) because §19.1.1 forbids them there",
    "space_inside_angle": "§3.1.2.14 badaspec: whitespace inside <addr-spec>",
    "unquoted_display_comma": "§3.1.2.15 baddn: non-token characters in an unquoted display name",
    "bad_version": "§3.1.2.16 badvers: SIP/7.0 (status hint 505)",
    "garbage_start_line": "start line that is neither a Request-Line nor a Status-Line",
    "contact_needs_angles": "§3.1.2.13 regbadct: addr-spec with '?' must be in <>",
    "duplicate_single_headers": "§3.3.8 multi01: two Call-ID and two To fields",
    "duplicate_content_length": "§3.3.9 mcl01: two Content-Length fields",
    "empty_params": "§3.1.2.1 badinv01: empty header parameters ';;;;'",
    "bad_via": "§3.1.2.1 badinv01: Via with empty parameters and empty list elements",
}


def test_fixture_sets_are_complete() -> None:
    assert {path.stem for path in (TORTURE / "valid").glob("*.sip")} == set(VALID)
    assert {path.stem for path in (TORTURE / "invalid").glob("*.sip")} == set(INVALID)
    assert len(VALID) >= 8
    assert len(INVALID) >= 8


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_message_parses(name: str) -> None:
    data = load_fixture(TORTURE / "valid" / f"{name}.sip")

    message = parse_message(data)

    VALID[name](message)
    # Serialising normalises (compact forms, folding) but keeps the meaning: a second round trip is stable.
    again = parse_message(bytes(message))
    assert again == message
    assert bytes(again) == bytes(message)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_message_through_the_stream_framer(name: str) -> None:
    data = load_fixture(TORTURE / "valid" / f"{name}.sip")
    expected = parse_message(data)
    whole = StreamFramer()
    whole.feed(data + data[:10])
    trickled = StreamFramer()
    items = []
    for octet in data:
        trickled.feed(bytes([octet]))
        if (item := trickled.next_item()) is not None:
            items.append(item)

    assert whole.next_item() == expected
    assert whole.next_item() is None  # trailing partial message waits
    assert items == [expected]


def test_extra_octets_after_the_body_are_discarded() -> None:
    # §3.1.1.9 (dblreq): datagram semantics, §18.3 — octets beyond Content-Length are not part of the message.
    data = load_fixture(TORTURE / "valid" / "odd_transports.sip")

    message = parse_message(data + b"REGISTER sip:example.com SIP/2.0\r\n\r\n")

    assert message == parse_message(data)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_message_is_rejected(name: str) -> None:
    data = load_fixture(TORTURE / "invalid" / f"{name}.sip")

    with pytest.raises(ParseError) as info:
        parse_message(data)

    assert info.value.status_hint == (505 if name == "bad_version" else 400)


@pytest.mark.parametrize("name", sorted(set(INVALID) - {"content_length_too_big"}))
def test_invalid_message_breaks_the_stream(name: str) -> None:
    framer = StreamFramer()
    framer.feed(load_fixture(TORTURE / "invalid" / f"{name}.sip"))

    with pytest.raises(ParseError):
        framer.next_item()


def test_raw_control_characters_are_refused_even_in_quoted_pairs() -> None:
    # RFC 4475 §3.1.1.2 puts quoted-pair escaped control octets (e.g. backslash + NUL) in a display name. We
    # refuse raw control octets anywhere in the head instead: they serve no purpose in a call setup and are a
    # log-injection hazard. A deliberate deviation from a "valid" torture case.
    data = load_fixture(TORTURE / "valid" / "no_space_display.sip").replace(b'"Pat"', b'"P\\\x00at"')

    with pytest.raises(ParseError):
        parse_message(data)
