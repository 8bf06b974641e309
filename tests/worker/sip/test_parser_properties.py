"""Property tests: hostile input gives a message or ParseError, nothing else; built messages round-trip."""

from __future__ import annotations

import contextlib
import string
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media_worker.sip.exceptions import ParseError
from media_worker.sip.fields import CSeq, NameAddr, Via
from media_worker.sip.framing import KeepAlivePing, KeepAlivePong, StreamFramer
from media_worker.sip.grammar import TOKEN_CHARS
from media_worker.sip.message import SipRequest, SipResponse, build_request, build_response, parse_message
from media_worker.sip.uri import SipUri

SEED = (
    (Path(__file__).parents[2] / "fixtures" / "sip" / "seed_invite.sip").read_bytes().replace(b"\n", b"\r\n")
)
PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------------------------- strategies

tokens = st.text(alphabet=sorted(TOKEN_CHARS), min_size=1, max_size=12)
any_text = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=12)
labels = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8)
hostnames = st.lists(labels, min_size=1, max_size=3).map(".".join)
hosts = st.one_of(
    hostnames,
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda address: f"[{address}]"),
)
ports = st.none() | st.integers(min_value=0, max_value=65_535)
uri_params = st.lists(st.tuples(any_text, st.none() | any_text), max_size=4).map(tuple)
uri_headers = st.lists(st.tuples(any_text, st.text(max_size=8)), max_size=3).map(tuple)
sip_uris = st.builds(
    SipUri,
    scheme=st.sampled_from(["sip", "sips"]),
    user=st.none() | any_text,
    host=hosts,
    port=ports,
    params=uri_params,
    headers=uri_headers,
    password=st.none() | st.text(st.characters(blacklist_categories=["Cs"]), max_size=8),
).map(lambda uri: replace(uri, password=None) if uri.user is None else uri)  # a password needs a user part
# Visible text without control characters or edge whitespace: what a header value looks like after parsing.
header_text = (
    st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=30)
    .map(lambda text: text.strip(" \t"))
    .filter(bool)
)
header_params = st.lists(st.tuples(tokens, st.none() | tokens), max_size=3).map(tuple)
name_addrs = st.builds(
    NameAddr,
    uri=sip_uris.map(lambda uri: SipUri(uri.scheme, uri.user, uri.host, uri.port, uri.params)),
    display_name=st.none() | header_text,
    params=header_params,
)
vias = st.builds(
    Via, transport=st.sampled_from(["TLS", "TCP", "UDP", "WSS"]), host=hosts, port=ports, params=header_params
)
extension_names = tokens.map(lambda name: "X-" + name)


@st.composite
def requests(draw: st.DrawFn) -> SipRequest:
    method = draw(tokens)
    body = draw(st.binary(max_size=200))
    headers = [("Via", str(via)) for via in draw(st.lists(vias, min_size=1, max_size=3))]
    headers += [
        ("From", str(draw(name_addrs))),
        ("To", str(draw(name_addrs))),
        ("Call-ID", draw(tokens)),
        ("CSeq", str(CSeq(draw(st.integers(0, 2**31 - 1)), method))),
        ("Max-Forwards", str(draw(st.integers(0, 255)))),
    ]
    headers += draw(st.lists(st.tuples(extension_names, header_text), max_size=4))
    uri = draw(
        st.one_of(
            sip_uris.map(lambda uri: SipUri(uri.scheme, uri.user, uri.host, uri.port, uri.params)),
            st.just("urn:service:sos"),
        )
    )
    return build_request(
        method, uri, headers=headers, body=body, content_type="application/octet-stream" if body else None
    )


# --------------------------------------------------------------------------------------------- properties


@PROPERTY_SETTINGS
@given(st.binary(max_size=3000))
def test_any_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    try:
        message = parse_message(data)
    except ParseError:
        return
    assert isinstance(message, SipRequest | SipResponse)


@PROPERTY_SETTINGS
@given(st.data())
def test_mutated_seed_parses_or_raises_parse_error(data: st.DataObject) -> None:
    mutated = bytearray(SEED)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        action = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        octet = data.draw(st.sampled_from([0, 9, 10, 13, 32, 34, 37, 44, 58, 59, 60, 62, 64, 0xC3, 0xFF, 65]))
        if action == "replace":
            mutated[position] = octet
        elif action == "insert":
            mutated.insert(position, octet)
        else:
            del mutated[position]
    try:
        message = parse_message(bytes(mutated))
    except ParseError:
        return
    assert isinstance(message, SipRequest | SipResponse)
    assert isinstance(parse_message(bytes(message)), type(message))


@PROPERTY_SETTINGS
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_framer_on_any_chunks_yields_items_or_parse_error(chunks: list[bytes]) -> None:
    framer = StreamFramer()
    try:
        for chunk in chunks:
            framer.feed(chunk)
            while (item := framer.next_item()) is not None:
                assert isinstance(item, SipRequest | SipResponse | KeepAlivePing | KeepAlivePong)
    except ParseError:
        return


@PROPERTY_SETTINGS
@given(st.text(max_size=200))
def test_field_parsers_on_any_text_return_or_raise_parse_error(text: str) -> None:
    for parser in (SipUri.parse, NameAddr.parse, Via.parse, CSeq.parse):
        with contextlib.suppress(ParseError):
            parser(text)


@PROPERTY_SETTINGS
@given(sip_uris)
def test_sip_uri_round_trips(uri: SipUri) -> None:
    assert SipUri.parse(str(uri)) == uri


@PROPERTY_SETTINGS
@given(name_addrs)
def test_name_addr_round_trips(address: NameAddr) -> None:
    assert NameAddr.parse(str(address)) == address


@PROPERTY_SETTINGS
@given(vias)
def test_via_round_trips(via: Via) -> None:
    assert Via.parse(str(via)) == via


@PROPERTY_SETTINGS
@given(requests(), st.integers(1, 50))
def test_built_requests_round_trip_whole_and_chunked(request: SipRequest, chunk: int) -> None:
    wire = bytes(request)

    assert parse_message(wire) == request
    assert parse_message(wire + b"trailing") == request
    framer = StreamFramer()
    items = []
    for start in range(0, len(wire), chunk):
        framer.feed(wire[start : start + chunk])
        while (item := framer.next_item()) is not None:
            items.append(item)
    assert items == [request]


@PROPERTY_SETTINGS
@given(requests(), st.integers(100, 699), st.none() | header_text, st.none() | tokens)
def test_built_responses_round_trip(
    request: SipRequest, status: int, reason: str | None, tag: str | None
) -> None:
    response = build_response(request, status, reason, to_tag=tag)

    parsed = parse_message(bytes(response))

    assert parsed == response
    assert isinstance(parsed, SipResponse)
    assert parsed.vias == request.vias
    assert parsed.cseq == request.cseq


FRAGMENTS = [
    b"INVITE ",
    b"SIP/2.0 ",
    b"SIP/2.0",
    b"200 ",
    b"sip:",
    b"sips:",
    b"a@b.example",
    b"[::1]",
    b":5061",
    b";tag=",
    b";branch=z9hG4bK",
    b"\r\n",
    b"\r\n\r\n",
    b" ",
    b"\t",
    b"Via: ",
    b"v:",
    b"To: ",
    b"From: ",
    b"f:",
    b"Call-ID: ",
    b"CSeq: ",
    b"1 INVITE",
    b"Content-Length: ",
    b"l:",
    b"0",
    b"12",
    b"99999999999",
    b"-1",
    b'"',
    b"\\",
    b"<",
    b">",
    b",",
    b";",
    b"=",
    b"%",
    b"%4",
    b"%41",
    b"?",
    b"&",
    b"\xc3\xa9",
    b"\xff",
    b"\x00",
    b"Contact: *",
    b"Max-Forwards: ",
]


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=60))
def test_sip_like_fragments_parse_or_raise_parse_error(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    try:
        message = parse_message(data)
    except ParseError:
        return
    assert isinstance(parse_message(bytes(message)), type(message))
