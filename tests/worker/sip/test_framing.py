"""Stream framing over TLS (RFC 3261 §18.3) and CRLF keep-alives (RFC 5626 §3.5.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_worker.sip.exceptions import ParseError
from media_worker.sip.framing import (
    PING,
    PONG,
    KeepAlivePing,
    KeepAlivePong,
    MalformedMessage,
    StreamFramer,
    salvage_fields,
)
from media_worker.sip.message import Limits, SipMessage, SipRequest, SipResponse, parse_message

FIXTURES = Path(__file__).parents[2] / "fixtures" / "sip"
TORTURE_INVALID = FIXTURES / "torture" / "invalid"
Item = SipMessage | KeepAlivePing | KeepAlivePong | MalformedMessage


def load_fixture(name: str) -> bytes:
    """Fixtures are stored with LF line endings; SIP needs CRLF."""
    return (FIXTURES / name).read_bytes().replace(b"\n", b"\r\n")


SEED = load_fixture("seed_invite.sip")
RESPONSE = (
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 192.0.2.1;branch=z9hG4bK1\r\nTo: <sip:b@example.com>;tag=2\r\n"
    b"From: <sip:a@example.com>;tag=1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 5\r\n\r\nhello"
)


def drain(framer: StreamFramer) -> list[Item]:
    items: list[Item] = []
    while (item := framer.next_item()) is not None:
        items.append(item)
    return items


def feed_in_chunks(data: bytes, size: int, framer: StreamFramer | None = None) -> list[Item]:
    """Feed ``data`` ``size`` bytes at a time, draining after every chunk (as the network layer does)."""
    framer = framer if framer is not None else StreamFramer()
    items: list[Item] = []
    for start in range(0, len(data), size):
        framer.feed(data[start : start + size])
        items.extend(drain(framer))
    return items


@pytest.mark.parametrize("chunk", [len(SEED), 1, 7, 100])
def test_seed_invite_in_any_chunking(chunk: int) -> None:
    (item,) = feed_in_chunks(SEED, chunk)

    assert isinstance(item, SipRequest)
    assert bytes(item) == SEED
    assert item == parse_message(SEED)


@pytest.mark.parametrize("chunk", [10_000, 1, 13])
def test_several_messages_and_keepalives_in_one_stream(chunk: int) -> None:
    stream = SEED + RESPONSE + PONG + SEED + RESPONSE

    items = feed_in_chunks(stream, chunk)

    assert [type(item) for item in items] == [SipRequest, SipResponse, KeepAlivePong, SipRequest, SipResponse]
    assert [bytes(item) for item in items if isinstance(item, SipRequest | SipResponse)] == [
        SEED,
        RESPONSE,
        SEED,
        RESPONSE,
    ]


def test_trailing_partial_message_waits_for_more_data() -> None:
    framer = StreamFramer()
    framer.feed(RESPONSE + SEED[:200])

    assert [bytes(item) for item in drain(framer) if isinstance(item, SipResponse)] == [RESPONSE]
    assert framer.next_item() is None
    assert framer.buffered == 200

    framer.feed(SEED[200:] + RESPONSE[:-1])
    (request,) = drain(framer)
    framer.feed(RESPONSE[-1:])
    (response,) = drain(framer)

    assert isinstance(request, SipRequest)
    assert isinstance(response, SipResponse)
    assert bytes(request) == SEED
    assert bytes(response) == RESPONSE
    assert framer.buffered == 0


def test_body_bytes_that_look_like_a_head_end_are_body() -> None:
    body = b"\r\n\r\nINVITE x SIP/2.0\r\n\r\n"
    message = RESPONSE.replace(
        b"Content-Length: 5\r\n\r\nhello", f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    )

    (item,) = feed_in_chunks(message + PONG, len(message) + 2)[:1]

    assert isinstance(item, SipResponse)
    assert item.body == body


def test_ping_and_pong_between_messages() -> None:
    items = feed_in_chunks(PING + RESPONSE + PING + PONG + RESPONSE + PONG, 10_000)

    assert [type(item) for item in items] == [
        KeepAlivePing,
        SipResponse,
        KeepAlivePing,
        KeepAlivePong,
        SipResponse,
        KeepAlivePong,
    ]


def test_ping_fed_byte_at_a_time_then_drained_is_a_ping() -> None:
    framer = StreamFramer()
    for octet in PING:
        framer.feed(bytes([octet]))

    assert drain(framer) == [KeepAlivePing()]


def test_lone_crlf_is_a_pong_at_once() -> None:
    framer = StreamFramer()
    framer.feed(b"\r")
    assert framer.next_item() is None
    framer.feed(b"\n")

    assert framer.next_item() == KeepAlivePong()
    assert framer.next_item() is None


def test_ping_split_across_drains_reads_as_two_pongs() -> None:
    # Documented trade-off: a pong is reported without waiting, so a ping cut in half between reads (which TLS
    # record framing makes unlikely) is seen as two pongs rather than stalling pong detection.
    assert feed_in_chunks(PING, 2) == [KeepAlivePong(), KeepAlivePong()]
    assert feed_in_chunks(PING, 1) == [KeepAlivePong(), KeepAlivePong()]
    assert feed_in_chunks(PING, 3) == [KeepAlivePing()]


def test_missing_content_length_on_a_stream_is_fatal_and_sticky() -> None:
    framer = StreamFramer()
    framer.feed(RESPONSE.replace(b"Content-Length: 5\r\n", b"") + RESPONSE)

    with pytest.raises(ParseError, match="Content-Length"):
        framer.next_item()
    with pytest.raises(ParseError):
        framer.next_item()


@pytest.mark.parametrize(
    "garbage",
    [b"\rX", b"\r\n\rX", b"GARBAGE\r\n\r\n", b"\x00\x01\r\n\r\n", b"SIP/2.0 200 OK\r\nBad Header\r\n\r\n"],
)
def test_garbage_is_fatal(garbage: bytes) -> None:
    framer = StreamFramer()
    framer.feed(garbage)

    with pytest.raises(ParseError):
        drain(framer)


def test_oversize_head_without_end_is_rejected_before_it_completes() -> None:
    framer = StreamFramer(limits=Limits(max_header_bytes=1024))
    framer.feed(b"INVITE sip:a@b.example SIP/2.0\r\n")

    def feed_filler_until_rejected() -> None:
        for _ in range(100):
            framer.feed(b"X-Filler: " + b"a" * 50 + b"\r\n")
            framer.next_item()

    with pytest.raises(ParseError) as info:
        feed_filler_until_rejected()

    assert info.value.status_hint == 513
    assert framer.buffered < 2048


def test_oversize_body_is_rejected_as_soon_as_the_head_arrives() -> None:
    framer = StreamFramer(limits=Limits(max_message_bytes=1000))
    framer.feed(RESPONSE.replace(b"Content-Length: 5", b"Content-Length: 5000")[:-5])

    with pytest.raises(ParseError) as info:
        framer.next_item()

    assert info.value.status_hint == 513


def test_constants() -> None:
    assert (PING, PONG) == (b"\r\n\r\n", b"\r\n")


# -- malformed heads between intact framing (report_malformed=True) --

BAD_CSEQ = SEED.replace(b"CSeq: 6214 INVITE", b"CSeq: sixty INVITE")


@pytest.mark.parametrize("chunk", [100_000, 1, 13])
def test_malformed_head_is_reported_and_the_stream_goes_on(chunk: int) -> None:
    stream = SEED + BAD_CSEQ + PONG + RESPONSE

    items = feed_in_chunks(stream, chunk, StreamFramer(report_malformed=True))

    assert [type(item) for item in items] == [SipRequest, MalformedMessage, KeepAlivePong, SipResponse]
    malformed = items[1]
    assert isinstance(malformed, MalformedMessage)
    assert malformed.is_request is True
    assert malformed.head + malformed.body == BAD_CSEQ
    assert malformed.body == SEED.split(b"\r\n\r\n", 1)[1]
    assert "CSeq" in str(malformed.error)
    assert malformed.error.status_hint == 400
    assert bytes(items[0]) == SEED  # type: ignore[arg-type]  # a SipRequest, checked above
    assert bytes(items[3]) == RESPONSE  # type: ignore[arg-type]  # a SipResponse, checked above


def test_by_default_a_malformed_head_is_still_fatal() -> None:
    framer = StreamFramer()
    framer.feed(BAD_CSEQ + RESPONSE)

    with pytest.raises(ParseError, match="CSeq"):
        framer.next_item()
    with pytest.raises(ParseError):
        framer.next_item()


# Framing survives every invalid head except one whose Content-Length is itself unusable; the "too big"
# case is a datagram rule (declared length beyond the data) that a stream simply waits out.
FATAL_ON_A_STREAM = {"content_length_negative"}
INVALID_NAMES = sorted(
    path.stem for path in TORTURE_INVALID.glob("*.sip") if path.stem != "content_length_too_big"
)


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_torture_invalid_messages_between_good_ones(name: str) -> None:
    bad = load_fixture(f"torture/invalid/{name}.sip")
    framer = StreamFramer(report_malformed=True)
    framer.feed(RESPONSE + bad + RESPONSE)

    if name in FATAL_ON_A_STREAM:
        assert framer.next_item() is not None
        with pytest.raises(ParseError):
            framer.next_item()
        return
    items = drain(framer)
    assert [type(item) for item in items] == [SipResponse, MalformedMessage, SipResponse]
    malformed = items[1]
    assert isinstance(malformed, MalformedMessage)
    assert malformed.head + malformed.body == bad
    expected_kind = {"garbage_start_line": None, "status_overlarge": False}.get(name, True)
    assert malformed.is_request is expected_kind
    assert malformed.error.status_hint == (505 if name == "bad_version" else 400)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (BAD_CSEQ.replace(b"Content-Length: 690\r\n", b""), "Content-Length is mandatory"),
        (BAD_CSEQ.replace(b"Content-Length: 690", b"Content-Length: 690\r\nl: 12"), "conflicting"),
        (BAD_CSEQ.replace(b"Content-Length: 690", b"Content-Length: 6x0"), "not a decimal"),
        (b"\x16\x03\x01\x02\r\nVia: SIP/2.0/TLS a;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n", None),
        (b"GET / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n", None),
    ],
    ids=["no-length", "two-lengths", "bad-length", "binary-start", "not-sip"],
)
def test_unframeable_heads_stay_fatal_when_reporting_malformed(bad: bytes, match: str | None) -> None:
    framer = StreamFramer(report_malformed=True)
    framer.feed(RESPONSE + bad + RESPONSE)

    assert isinstance(framer.next_item(), SipResponse)
    with pytest.raises(ParseError, match=match):
        framer.next_item()
    with pytest.raises(ParseError):
        framer.next_item()


def test_oversize_heads_and_bodies_stay_fatal_when_reporting_malformed() -> None:
    framer = StreamFramer(limits=Limits(max_header_bytes=256), report_malformed=True)
    framer.feed(BAD_CSEQ)
    with pytest.raises(ParseError) as head_info:
        framer.next_item()
    framer = StreamFramer(limits=Limits(max_message_bytes=1000), report_malformed=True)
    framer.feed(BAD_CSEQ.replace(b"Content-Length: 690", b"Content-Length: 5000"))
    with pytest.raises(ParseError) as body_info:
        framer.next_item()

    assert (head_info.value.status_hint, body_info.value.status_hint) == (513, 513)


def test_too_many_fields_within_the_head_limit_is_a_malformed_message() -> None:
    bad = RESPONSE.replace(b"Content-Length: 5", b"X-A: 1\r\nX-B: 2\r\nContent-Length: 5")

    (item,) = feed_in_chunks(bad, 10_000, StreamFramer(limits=Limits(max_headers=8), report_malformed=True))

    assert isinstance(item, MalformedMessage)
    assert item.is_request is False
    assert item.error.status_hint == 513
    assert item.body == b"hello"


def test_malformed_message_repr_hides_the_head_and_body() -> None:
    bad = BAD_CSEQ.replace(b"join-token", b"SECRET-TOKEN")
    (item,) = feed_in_chunks(bad, 10_000, StreamFramer(report_malformed=True))

    assert isinstance(item, MalformedMessage)
    assert b"SECRET-TOKEN" in item.head
    assert "SECRET-TOKEN" not in repr(item)
    assert "MalformedMessage(error=ParseError(" in repr(item)


def test_salvage_fields_unfolds_expands_and_skips_unusable_lines() -> None:
    head = (
        b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/TLS h;branch=z9hG4bK1\r\nSubject: first\r\n  second\r\n"
        b"Bad Name: x\r\nX-Bin: \xff\xfe\r\nX-Ctl: a\x00b\r\nX-Spoilt: a\r\n \xff\r\nl:  0 \r\n\r\n"
    )

    start, fields = salvage_fields(head)

    assert start == "OPTIONS sip:a@b SIP/2.0"
    assert fields == [
        ("Via", "SIP/2.0/TLS h;branch=z9hG4bK1"),
        ("Subject", "first second"),
        ("Content-Length", "0"),
    ]
    assert salvage_fields(b"\xff\r\nCall-ID: x\r\n\r\n") == (None, [("Call-ID", "x")])
