"""SIP message parsing, serialising and building (RFC 3261 §7, §8.2.6, §20)."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_worker.sip.exceptions import (
    LocalProtocolError,
    ParseError,
    ProtocolError,
    RemoteProtocolError,
    SipError,
)
from media_worker.sip.message import (
    REASON_PHRASES,
    CSeq,
    Headers,
    Limits,
    NameAddr,
    SipRequest,
    SipResponse,
    Via,
    build_request,
    build_response,
    parse_message,
)
from media_worker.sip.uri import SipUri, chime_join_uri

FIXTURES = Path(__file__).parents[2] / "fixtures" / "sip"
SECRET = "S3cr3t+T0k/3n=="


def load_fixture(name: str) -> bytes:
    """Fixtures are stored with LF line endings; SIP needs CRLF."""
    return (FIXTURES / name).read_bytes().replace(b"\n", b"\r\n")


def seed_invite() -> bytes:
    return load_fixture("seed_invite.sip")


def simple_request(**overrides: str) -> bytes:
    fields = {
        "Via": "SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bK776asdhds",
        "Max-Forwards": "70",
        "To": "<sip:bob@example.com>",
        "From": "<sip:alice@example.com>;tag=1928301774",
        "Call-ID": "a84b4c76e66710@192.0.2.1",
        "CSeq": "314159 OPTIONS",
    }
    fields.update(overrides)
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items() if value)
    return f"OPTIONS sip:bob@example.com SIP/2.0\r\n{head}Content-Length: 0\r\n\r\n".encode()


# ---------------------------------------------------------------------------------------------- seed INVITE


def test_seed_invite_round_trips_byte_for_byte() -> None:
    data = seed_invite()

    message = parse_message(data)

    assert isinstance(message, SipRequest)
    assert bytes(message) == data
    assert parse_message(bytes(message)) == message


def test_seed_invite_fields() -> None:
    message = parse_message(seed_invite())

    assert isinstance(message, SipRequest)
    assert message.method == "INVITE"
    assert message.uri_parsed().param("X-chime-join-token") == "join-token"
    assert message.uri_parsed().param("transport") == "tls"
    (via,) = message.vias
    assert (via.transport, via.host, via.port, via.branch) == ("TLS", "IPaddress", 12345, "branch")
    assert via.param("rport") == ""
    assert message.from_.tag == "tag"
    assert message.from_.uri.user == "12065550100"
    # The seed's To is in addr-spec form, so the token after the URI is a header parameter there (§20.10).
    assert message.to.param("X-chime-join-token") == "join-token"
    assert message.to.tag is None
    assert message.cseq == CSeq(6214, "INVITE")
    assert message.call_id == "a1234567-89b0-1c2d-e34f-5gh678j9k2lm"
    assert message.content_type == "application/sdp"
    assert message.headers.get_all("Supported") == ["replaces", "100rel", "timer", "norefersub"]
    assert message.headers.get_all("allow")[:3] == ["PRACK", "INVITE", "ACK"]
    assert message.headers.get("min-se") == "90"
    assert message.body.startswith(b"v=0\r\n")
    assert message.body.endswith(b"a=crypto:6 AES_CM_128_HMAC_SHA1_32 inline:EXAMPLE\r\n")


def test_seed_invite_with_trailing_data_keeps_exact_body() -> None:
    data = seed_invite()

    message = parse_message(data + b"OPTIONS sip:x SIP/2.0\r\n")

    assert bytes(message) == data  # §18.3: octets beyond Content-Length are discarded


def test_every_truncation_of_seed_invite_is_a_parse_error() -> None:
    data = seed_invite()
    for cut in range(len(data)):
        with pytest.raises(ParseError):
            parse_message(data[:cut])


def test_message_reprs_hide_join_token_and_body() -> None:
    data = seed_invite().replace(b"=join-token", f"={SECRET}".encode())

    message = parse_message(data)
    assert isinstance(message, SipRequest)

    assert SECRET.encode() in bytes(message)
    for text in (repr(message), repr(message.headers), repr(message.to), repr(message.uri_parsed())):
        assert SECRET not in text
    assert "inline:EXAMPLE" not in repr(message)
    assert f"body=<{len(message.body)} bytes>" in repr(message)


def test_parse_errors_hide_join_token() -> None:
    data = seed_invite().replace(b"=join-token", f"={SECRET}".encode())
    broken = data.replace(b"To: sip:17035550122@", b"To: sip:17035550122@bad host ")

    with pytest.raises(ParseError) as info:
        parse_message(broken.replace(b"CSeq: 6214 INVITE", b"CSeq: 6214 BYE"))

    assert SECRET not in str(info.value)
    with pytest.raises(ParseError) as info2:
        parse_message(data.replace(b"SIP/2.0\r\n", f"SIP/2.0 X-chime-join-token={SECRET}\r\n".encode(), 1))
    assert SECRET not in str(info2.value)


# ---------------------------------------------------------------------------------------------- Headers


def test_headers_are_case_insensitive_and_expand_compact_forms() -> None:
    headers = Headers([("v", "SIP/2.0/TLS a"), ("i", "abc"), ("CALL-ID", "def"), ("cseq", "1 INVITE")])

    assert list(headers) == [
        ("Via", "SIP/2.0/TLS a"),
        ("Call-ID", "abc"),
        ("Call-ID", "def"),
        ("CSeq", "1 INVITE"),
    ]
    assert headers.get("call-id") == "abc"
    assert headers.get("I") == "abc"
    assert headers.get_all("Call-Id") == ["abc", "def"]
    assert "VIA" in headers
    assert "v" in headers
    assert 3 not in headers
    assert headers.get("Route") is None
    assert headers.get_all("Route") == []
    assert len(headers) == 4


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("www-authenticate", "WWW-Authenticate"),
        ("content-length", "Content-Length"),
        ("MAX-FORWARDS", "Max-Forwards"),
        ("min-se", "Min-SE"),
        ("session-expires", "Session-Expires"),
        ("x", "Session-Expires"),
        ("record-route", "Record-Route"),
        ("X-Chime-Custom", "X-Chime-Custom"),
        ("x-lower", "x-lower"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("m", "Contact"),
        ("e", "Content-Encoding"),
        ("f", "From"),
        ("t", "To"),
        ("s", "Subject"),
        ("k", "Supported"),
        ("o", "Event"),
        ("r", "Refer-To"),
        ("b", "Referred-By"),
        ("u", "Allow-Events"),
        ("rseq", "RSeq"),
        ("unknown-header", "Unknown-Header"),
    ],
)
def test_canonical_names(given: str, canonical: str) -> None:
    assert list(Headers([(given, "v")])) == [(canonical, "v")]


def test_get_all_splits_list_headers_on_top_level_commas_only() -> None:
    headers = Headers(
        [
            ("Contact", '"Doe, John" <sip:j@a.example;x=1,2>;q=0.5, <sip:k@b.example>'),
            ("Contact", "<sip:l@c.example>"),
            ("Allow", "INVITE,ACK ,, BYE"),
            ("WWW-Authenticate", 'Digest realm="a, b", nonce="x"'),
            ("Subject", "one, two"),
        ]
    )

    assert headers.get_all("m") == [
        '"Doe, John" <sip:j@a.example;x=1,2>;q=0.5',
        "<sip:k@b.example>",
        "<sip:l@c.example>",
    ]
    assert headers.get_all("Allow") == ["INVITE", "ACK", "BYE"]
    assert headers.get_all("WWW-Authenticate") == ['Digest realm="a, b", nonce="x"']
    assert headers.get_all("Subject") == ["one, two"]
    assert headers.get("Contact") == '"Doe, John" <sip:j@a.example;x=1,2>;q=0.5, <sip:k@b.example>'


def test_get_all_rejects_unbalanced_list_values() -> None:
    with pytest.raises(ParseError):
        Headers([("Route", '<sip:a.example;lr>, "unterminated <sip:b>')]).get_all("Route")


def test_headers_mutation() -> None:
    headers = Headers([("Via", "1"), ("To", "t"), ("Via", "2")])
    clone = headers.copy()

    headers.set("via", "3")
    headers.add("Route", "r")
    headers.set("Contact", "c")
    headers.remove("TO")
    headers.remove("Absent")

    assert list(headers) == [("Via", "3"), ("Route", "r"), ("Contact", "c")]
    assert list(clone) == [("Via", "1"), ("To", "t"), ("Via", "2")]
    assert clone != headers
    assert clone == Headers([("v", "1"), ("t", "t"), ("v", "2")])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Subject", "a\r\nVia: injected"),
        ("Subject", "a\nb"),
        ("Subject", "nul\x00"),
        ("Bad Name", "v"),
        ("", "v"),
    ],
)
def test_headers_refuse_injection(name: str, value: str) -> None:
    with pytest.raises(LocalProtocolError):
        Headers().add(name, value)


# ---------------------------------------------------------------------------------------------- field values


def test_name_addr_forms() -> None:
    quoted = NameAddr.parse(
        '"Alice \\"A\\" Smith" <sip:alice@example.com;transport=tls>;tag=88sja8x;expires=60'
    )
    tokens = NameAddr.parse("Bob  Jones <sip:bob@example.com>")
    addr_spec = NameAddr.parse("sip:carol@example.com;tag=xyz;lr")

    assert quoted.display_name == 'Alice "A" Smith'
    assert quoted.uri.param("transport") == "tls"
    assert quoted.tag == "88sja8x"
    assert quoted.param("EXPIRES") == "60"
    assert str(quoted) == '"Alice \\"A\\" Smith" <sip:alice@example.com;transport=tls>;tag=88sja8x;expires=60'
    assert tokens.display_name == "Bob Jones"
    assert str(tokens) == '"Bob Jones" <sip:bob@example.com>'
    assert addr_spec.uri == SipUri("sip", "carol", "example.com")
    assert addr_spec.params == (("tag", "xyz"), ("lr", None))
    assert str(addr_spec) == "<sip:carol@example.com>;tag=xyz;lr"
    for value in (quoted, tokens, addr_spec):
        assert NameAddr.parse(str(value)) == value


def test_name_addr_with_tag() -> None:
    address = NameAddr.parse("<sip:a@example.com>;tag=old;x")

    assert address.with_tag("new").params == (("x", None), ("tag", "new"))
    assert NameAddr.parse("<sip:a@example.com>").with_tag("t1").tag == "t1"
    with pytest.raises(LocalProtocolError):
        address.with_tag("bad tag")


@pytest.mark.parametrize(
    "text",
    [
        "",
        '"unterminated <sip:a@example.com>',
        '"quoted" sip:a@example.com',
        "Doe, John <sip:a@example.com>",
        "<sip:a@example.com",
        "< sip:a@example.com>",
        "sip:a@example.com?subject=x",
        "<sip:a@example.com>;;tag=1",
        "<sip:a@example.com>;tag=",
        "<sip:a@example.com> junk",
        "<tel:+1234>",
        "<sip:a@example.com>;tag=a b",
    ],
)
def test_name_addr_invalid(text: str) -> None:
    with pytest.raises(ParseError):
        NameAddr.parse(text)


def test_via_parse_and_str() -> None:
    via = Via.parse(
        "SIP / 2.0 / tls  [2001:db8::1] : 5061 ; branch=z9hG4bKabc ; rport ; received=2001:db8::2"
    )

    assert via == Via(
        "TLS", "[2001:db8::1]", 5061, (("branch", "z9hG4bKabc"), ("rport", None), ("received", "2001:db8::2"))
    )
    assert via.branch == "z9hG4bKabc"
    assert via.param("RPORT") == ""
    assert via.param("maddr") is None
    assert str(via) == "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKabc;rport;received=2001:db8::2"
    assert Via.parse(str(via)) == via
    assert Via.parse("SIP/2.0/UDP host.example").branch is None
    assert Via.parse("SIP/2.0/UDP host.example;branch").branch is None  # flag form: syntactically fine, empty


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0/TLS",
        "SIP/2.0/TLS ",
        "SIP/3.0/UDP host.example",
        "HTTP/2.0/TLS host.example",
        "SIP/2.0/T<S host.example",
        "SIP/2.0/TLS host.example:99999",
        "SIP/2.0/TLS host.example;;",
        "SIP/2.0/TLS host.example;branch=a b",
        "SIP/2.0/TLS a.example, SIP/2.0/TLS b.example",
        "SIP/2.0/TLS host example",
    ],
)
def test_via_invalid(text: str) -> None:
    with pytest.raises(ParseError):
        Via.parse(text)


def test_cseq() -> None:
    assert CSeq.parse("  42   INVITE ") == CSeq(42, "INVITE")
    assert str(CSeq(2**31 - 1, "BYE")) == "2147483647 BYE"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "INVITE",
        "x INVITE",
        "-1 INVITE",
        "1 INVITE extra",
        "2147483648 INVITE",
        "1 IN<ITE",
        "١ INVITE",
    ],
)
def test_cseq_invalid(text: str) -> None:
    with pytest.raises(ParseError):
        CSeq.parse(text)


# ---------------------------------------------------------------------------------------------- parse_message


def test_parse_response() -> None:
    data = (
        b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/TLS 192.0.2.1;branch=z9hG4bK1\r\n"
        b"To: <sip:b@example.com>;tag=2\r\nFrom: <sip:a@example.com>;tag=1\r\n"
        b"Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )

    message = parse_message(data)

    assert isinstance(message, SipResponse)
    assert (message.status, message.reason, message.body) == (180, "Ringing", b"")
    assert message.to.tag == "2"
    assert bytes(message) == data


def test_without_content_length_the_body_is_the_rest() -> None:
    data = simple_request().replace(b"Content-Length: 0\r\n", b"") + b"hello"

    message = parse_message(data)

    assert message.body == b"hello"
    assert bytes(message).endswith(b"Content-Length: 5\r\n\r\nhello")


def test_folded_and_compact_headers() -> None:
    data = simple_request(Subject="first\r\n  second\r\n\tthird").replace(b"To:", b"t  :")

    message = parse_message(data)

    assert message.headers.get("Subject") == "first second third"
    assert message.to.uri.user == "bob"


@pytest.mark.parametrize(
    ("mutation", "hint"),
    [
        (lambda d: d.replace(b"Call-ID", b"Call-ID\xff"), 400),
        (lambda d: d.replace(b"OPTIONS sip", b"OPTI\x00NS sip"), 400),
        (lambda d: d.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\n"), 400),
        (lambda d: d.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\rX: y\r\n"), 400),
        (lambda d: d.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards\r\n"), 400),
        (lambda d: d.replace(b"Max-Forwards: 70\r\n", b"Bad Name: x\r\n"), 400),
        (
            lambda d: d.replace(b"Max-Forwards", b" continuation-first", 1).replace(
                b"OPTIONS sip:bob", b"OPTIONS sip:bob"
            ),
            400,
        ),
        (lambda d: d.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505),
        (lambda d: d.replace(b"SIP/2.0\r\n", b"HTTP/1.1\r\n", 1), 400),
        (lambda d: d.replace(b"Call-ID: a84b4c76e66710@192.0.2.1", b"Call-ID: two words"), 400),
        (lambda d: d.replace(b"Call-ID: a84b4c76e66710@192.0.2.1", b"Call-ID:"), 400),
        (lambda d: d.replace(b"Content-Length: 0", b"Content-Length: 99999999999"), 400),
        (lambda d: d.replace(b"Content-Length: 0", b"Content-Length: 1e3"), 400),
        (lambda d: d.replace(b"\r\n\r\n", b"\r\n"), 400),
        (lambda d: b"", 400),
        (lambda d: b"\r\n\r\n", 400),
        (lambda d: b"SIP/2.0 99 Low\r\n\r\n", 400),
        (lambda d: b"SIP/2.0 700 High\r\n\r\n", 400),
        (lambda d: b"SIP/2.0 abc X\r\n\r\n", 400),
    ],
)
def test_malformed_messages(mutation: object, hint: int) -> None:
    assert callable(mutation)
    data = mutation(simple_request())
    with pytest.raises(ParseError) as info:
        parse_message(data)
    assert info.value.status_hint == hint


def test_response_without_reason_space_is_tolerated() -> None:
    message = parse_message(b"SIP/2.0 200\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")

    assert isinstance(message, SipResponse)
    assert (message.status, message.reason) == (200, "")
    with pytest.raises(ParseError):
        _ = message.call_id
    with pytest.raises(ParseError):
        _ = message.to


def test_limits() -> None:
    data = simple_request(Subject="s" * 300)
    tight = Limits(max_message_bytes=10_000, max_header_bytes=1000, max_headers=8, max_line=200)

    with pytest.raises(ParseError) as line_error:
        parse_message(data, limits=tight)
    with pytest.raises(ParseError) as count_error:
        parse_message(simple_request(Subject="s"), limits=Limits(max_headers=7))
    with pytest.raises(ParseError) as head_error:
        parse_message(data, limits=Limits(max_header_bytes=300))
    with pytest.raises(ParseError) as size_error:
        parse_message(data + b"x" * 100, limits=Limits(max_message_bytes=len(data) + 10))

    assert {e.value.status_hint for e in (line_error, count_error, head_error, size_error)} == {513}
    assert (
        parse_message(simple_request(Subject="s"), limits=Limits(max_headers=8)).headers.get("Subject") == "s"
    )


def test_hostile_header_flood_is_rejected_quickly() -> None:
    flood = simple_request().replace(b"\r\n\r\n", b"\r\n" + b"X: y\r\n" * 200 + b"\r\n")

    with pytest.raises(ParseError):
        parse_message(flood)


# ---------------------------------------------------------------------------------------------- building


def test_build_request_sets_lengths_and_round_trips() -> None:
    uri = chime_join_uri(join_number="17035550122", host="vc.example.com", join_token=SECRET)
    request = build_request(
        "INVITE",
        uri,
        headers=[
            ("Via", "SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bK1;rport"),
            ("From", "<sip:dialer@192.0.2.1>;tag=f1"),
            ("To", f"<sip:17035550122@vc.example.com;X-chime-join-token={SECRET}>"),
            ("Call-ID", "c1@192.0.2.1"),
            ("CSeq", "1 INVITE"),
            ("Max-Forwards", "70"),
        ],
        body=b"v=0\r\n",
        content_type="application/sdp",
    )

    assert request.uri == str(uri)
    assert request.headers.get("Content-Length") == "5"
    assert request.content_type == "application/sdp"
    assert parse_message(bytes(request)) == request
    assert SECRET not in repr(request)


def test_build_request_rejects_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        build_request("IN VITE", "sip:a@b.example", headers=[])
    with pytest.raises(LocalProtocolError):
        build_request("INVITE", "sip:a@b.example x", headers=[])
    with pytest.raises(LocalProtocolError):
        build_request("INVITE", "sip:a@b.example", headers=[], body=b"no type")
    with pytest.raises(LocalProtocolError):
        build_request("INVITE", "sip:a@b.example", headers=[("X", "a\r\nb")])


def test_build_response_copies_dialog_headers() -> None:
    data = simple_request(Via="SIP/2.0/TLS a.example;branch=z9hG4bK2, SIP/2.0/TLS b.example;branch=z9hG4bK1")
    request = parse_message(
        data.replace(
            b"Max-Forwards", b"Via: SIP/2.0/TLS c.example;branch=z9hG4bK0\r\nTimestamp: 54\r\nMax-Forwards"
        )
    )
    assert isinstance(request, SipRequest)

    response = build_response(request, 200, to_tag="as83kd9bs", headers=[("Contact", "<sip:bob@192.0.2.4>")])
    trying = build_response(request, 100)

    assert (response.status, response.reason) == (200, "OK")
    assert [v.branch for v in response.vias] == ["z9hG4bK2", "z9hG4bK1", "z9hG4bK0"]
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    assert response.from_ == request.from_
    assert response.to == request.to.with_tag("as83kd9bs")
    assert response.headers.get("To") == "<sip:bob@example.com>;tag=as83kd9bs"
    assert (response.call_id, response.cseq) == (request.call_id, request.cseq)
    assert response.headers.get("Contact") == "<sip:bob@192.0.2.4>"
    assert response.headers.get("Timestamp") is None
    assert parse_message(bytes(response)) == response
    assert trying.reason == "Trying"
    assert trying.headers.get("Timestamp") == "54"
    assert trying.to.tag is None


def test_build_response_keeps_existing_to_tag_and_defaults_reasons() -> None:
    request = parse_message(simple_request(To="<sip:bob@example.com>;tag=existing"))
    assert isinstance(request, SipRequest)

    assert build_response(request, 481, to_tag="other").to.tag == "existing"
    assert build_response(request, 422).reason == "Session Interval Too Small"
    assert build_response(request, 499).reason == "Client Error"
    assert build_response(request, 699).reason == "Global Failure"
    assert build_response(request, 486, "Busy Now").reason == "Busy Now"
    with pytest.raises(LocalProtocolError):
        build_response(request, 99)
    with pytest.raises(LocalProtocolError):
        build_response(request, 200, "OK\r\nVia: x")
    with pytest.raises(LocalProtocolError):
        build_response(request, 200, to_tag="bad tag")
    with pytest.raises(LocalProtocolError):
        build_response(request, 200, body=b"x")


def test_build_response_needs_request_headers() -> None:
    bare = SipRequest("OPTIONS", "sip:a@b.example", Headers([("Via", "SIP/2.0/TLS a.example")]))

    with pytest.raises(LocalProtocolError):
        build_response(bare, 200)


def test_reason_phrase_table() -> None:
    expected = {
        100: "Trying",
        180: "Ringing",
        183: "Session Progress",
        200: "OK",
        401: "Unauthorized",
        407: "Proxy Authentication Required",
        422: "Session Interval Too Small",
        481: "Call/Transaction Does Not Exist",
        486: "Busy Here",
        487: "Request Terminated",
        488: "Not Acceptable Here",
        491: "Request Pending",
        500: "Server Internal Error",
        503: "Service Unavailable",
        603: "Decline",
    }
    assert {code: REASON_PHRASES[code] for code in expected} == expected


# ---------------------------------------------------------------------------------------------- errors


def test_exception_tree() -> None:
    assert issubclass(ParseError, RemoteProtocolError)
    assert issubclass(RemoteProtocolError, ProtocolError)
    assert issubclass(LocalProtocolError, ProtocolError)
    assert issubclass(ProtocolError, SipError)
    assert LocalProtocolError("x").status_hint == 500
    assert RemoteProtocolError("x").status_hint == 400
    assert ParseError("x", status_hint=513).status_hint == 513
    with pytest.raises(TypeError):
        ProtocolError("abstract")
    assert str(ParseError(f"bad sip:a@b;X-chime-join-token={SECRET}")) == "bad sip:a@b;X-chime-join-token=***"
