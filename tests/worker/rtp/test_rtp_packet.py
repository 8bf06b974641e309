from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media_worker.rtp import RtpExtension, RtpPacket, RtpParseError, is_rtcp

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rtp"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_plain_pcmu_packet() -> None:
    data = load("rtp.bin")
    packet = RtpPacket.parse(data)
    assert (packet.payload_type, packet.sequence_number, packet.timestamp, packet.ssrc) == (
        0, 0x1234, 1600, 0x11223344,
    )  # fmt: skip
    assert not packet.marker
    assert packet.csrc == ()
    assert packet.extension is None
    assert packet.payload == b"\xff" * 160
    assert bytes(packet) == data
    assert (
        repr(packet) == "RtpPacket(pt=0, seq=4660, ts=1600, ssrc=0x11223344, marker=False, payload=160 bytes)"
    )


def test_packet_with_csrc_and_marker() -> None:
    data = load("rtp_with_csrc.bin")
    packet = RtpPacket.parse(data)
    assert packet.marker
    assert packet.payload_type == 8
    assert packet.csrc == (1, 2)
    assert len(packet.payload) == 160
    assert bytes(packet) == data


def test_packet_with_header_extension() -> None:
    data = load("rtp_with_extension.bin")
    packet = RtpPacket.parse(data)
    assert packet.extension == RtpExtension(profile=0xBEDE, data=bytes.fromhex("10abcd00"))
    assert packet.payload == b"\x01\x02\x03\x04"
    assert bytes(packet) == data


def test_packet_with_padding() -> None:
    data = load("rtp_with_padding.bin")
    packet = RtpPacket.parse(data)
    assert packet.payload == bytes.fromhex("aabbccdd")
    assert packet.padding_length == 4
    assert bytes(packet) == data


def test_trailing_data_is_payload_not_an_error() -> None:
    data = load("rtp.bin") + b"extra"
    assert RtpPacket.parse(data).payload.endswith(b"extra")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("rtp_truncated.bin", "shorter than the 12-byte header"),
        ("rtp_csrc_truncated.bin", "truncated CSRC"),
        ("rtp_extension_truncated.bin", "truncated extension data"),
        ("rtp_padding_invalid.bin", "padding length 9 is invalid"),
        ("rtp_version_invalid.bin", "version is 1"),
    ],
)
def test_invalid_packets_raise_the_module_error(name: str, message: str) -> None:
    with pytest.raises(RtpParseError, match=message):
        RtpPacket.parse(load(name))


@pytest.mark.parametrize("name", ["rtp.bin", "rtp_with_csrc.bin", "rtp_with_extension.bin"])
def test_every_prefix_either_parses_or_raises_rtp_parse_error(name: str) -> None:
    data = load(name)
    for end in range(len(data)):
        with contextlib.suppress(RtpParseError):
            RtpPacket.parse(data[:end])


def test_extension_header_cut_short() -> None:
    with pytest.raises(RtpParseError, match="truncated extension header"):
        RtpPacket.parse(load("rtp_with_extension.bin")[:14])


def test_serialiser_refuses_what_the_wire_cannot_carry() -> None:
    with pytest.raises(ValueError, match="at most 15 CSRCs"):
        bytes(RtpPacket(0, 0, 0, 0, csrc=tuple(range(16))))
    with pytest.raises(ValueError, match="multiple of 4"):
        bytes(RtpPacket(0, 0, 0, 0, extension=RtpExtension(1, b"abc")))


@given(
    payload_type=st.integers(0, 127),
    seq=st.integers(0, 0xFFFF),
    ts=st.integers(0, 0xFFFF_FFFF),
    ssrc=st.integers(0, 0xFFFF_FFFF),
    payload=st.binary(max_size=64),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFF_FFFF), max_size=15).map(tuple),
    ext_words=st.none() | st.integers(0, 3),
    padding=st.integers(0, 255),
)
def test_round_trip_property(
    payload_type: int,
    seq: int,
    ts: int,
    ssrc: int,
    payload: bytes,
    marker: bool,
    csrc: tuple[int, ...],
    ext_words: int | None,
    padding: int,
) -> None:
    extension = None if ext_words is None else RtpExtension(0x1000, bytes(range(4 * ext_words)))
    packet = RtpPacket(payload_type, seq, ts, ssrc, payload, marker, csrc, extension, padding)
    assert RtpPacket.parse(bytes(packet)) == packet


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (bytes.fromhex("80c8"), True),  # SR
        (bytes.fromhex("80c9"), True),  # RR
        (bytes.fromhex("80df"), True),  # 223: top of the RFC 5761 range
        (bytes.fromhex("80e0"), False),  # 224: RTP with marker, PT 96
        (bytes.fromhex("8000"), False),  # PCMU
        (bytes.fromhex("8008"), False),  # PCMA
        (bytes.fromhex("80e5"), False),  # marker + PT 101 (telephone-event)
        (bytes.fromhex("80bf"), False),  # 191: marker + PT 63
        (b"\x80", False),
        (b"", False),
    ],
)
def test_is_rtcp_demultiplexes_per_rfc5761(data: bytes, expected: bool) -> None:
    assert is_rtcp(data) is expected
