"""Stream framing over TLS (RFC 3261 §18.3) and CRLF keep-alives (RFC 5626 §3.5.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_worker.sip.exceptions import ParseError
from media_worker.sip.framing import PING, PONG, KeepAlivePing, KeepAlivePong, StreamFramer
from media_worker.sip.message import Limits, SipMessage, SipRequest, SipResponse, parse_message

FIXTURES = Path(__file__).parents[2] / "fixtures" / "sip"
Item = SipMessage | KeepAlivePing | KeepAlivePong


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
    framer = framer or StreamFramer()
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
