from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from media_worker.rtp import (
    RtcpByePacket,
    RtcpReportBlock,
    RtcpRrPacket,
    RtcpSdesChunk,
    RtcpSdesPacket,
    RtcpSrPacket,
    RtcpUnknownPacket,
    RtpParseError,
    is_rtcp,
    parse_rtcp,
    serialize_rtcp,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rtp"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_sender_report() -> None:
    data = load("rtcp_sr.bin")
    assert is_rtcp(data)
    [sr] = parse_rtcp(data)
    assert sr == RtcpSrPacket(
        ssrc=0x11223344,
        ntp_timestamp=0xE8F1A2B3C4D5E6F7,
        rtp_timestamp=0x12345,
        packet_count=100,
        octet_count=16000,
        reports=(
            RtcpReportBlock(
                ssrc=0xCAFEBABE,
                fraction_lost=5,
                packets_lost=7,
                highest_sequence=0x1FFFF,
                jitter=32,
                lsr=0xA2B3C4D5,
                dlsr=0x18000,
            ),
        ),
    )
    assert serialize_rtcp([sr]) == data


def test_receiver_report_with_negative_loss_and_sdes() -> None:
    data = load("rtcp_rr_sdes.bin")
    rr, sdes = parse_rtcp(data)
    assert isinstance(rr, RtcpRrPacket)
    assert rr.ssrc == 0xCAFEBABE
    assert rr.reports[0].packets_lost == -1  # duplicates: 24-bit two's complement (RFC 3550 §6.4.1)
    assert rr.reports[0].highest_sequence == 0x20010
    assert sdes == RtcpSdesPacket(chunks=(RtcpSdesChunk(0xCAFEBABE, ((1, b"host@abcd"),)),))
    assert serialize_rtcp([rr, sdes]) == data


def test_bye_with_reason() -> None:
    data = load("rtcp_bye.bin")
    assert parse_rtcp(data) == [RtcpByePacket(sources=(0xCAFEBABE,), reason=b"leaving")]
    assert serialize_rtcp(parse_rtcp(data)) == data


def test_compound_with_unknown_packet_type() -> None:
    data = load("rtcp_compound.bin")
    rr, bye, app = parse_rtcp(data)
    assert rr == RtcpRrPacket(ssrc=0xCAFEBABE)
    assert bye == RtcpByePacket(sources=(0xCAFEBABE, 0x11223344))
    assert app == RtcpUnknownPacket(packet_type=204, count=0, body=bytes.fromhex("cafebabe6e616d6501020304"))
    assert serialize_rtcp([rr, bye, app]) == data


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("rtcp_truncated.bin", "shorter than its 4-byte header"),
        ("rtcp_sr_truncated.bin", "SR is truncated"),
        ("rtcp_length_invalid.bin", "length exceeds the datagram"),
        ("rtcp_bye_invalid.bin", "BYE reason is truncated"),
        ("rtcp_padding_invalid.bin", "padding is only allowed on the last packet"),
        ("rtcp_version_invalid.bin", "version is 1"),
    ],
)
def test_invalid_rtcp_raises_the_module_error(name: str, message: str) -> None:
    with pytest.raises(RtpParseError, match=message):
        parse_rtcp(load(name))


@pytest.mark.parametrize("name", ["rtcp_sr.bin", "rtcp_rr_sdes.bin", "rtcp_bye.bin", "rtcp_compound.bin"])
def test_every_prefix_and_trailing_junk_is_handled(name: str) -> None:
    data = load(name)
    for end in range(len(data)):
        with contextlib.suppress(RtpParseError):
            parse_rtcp(data[:end])
    with pytest.raises(RtpParseError):
        parse_rtcp(data + b"\x80")


def test_padding_on_the_last_packet_is_stripped() -> None:
    padded = bytes.fromhex("a0c90002cafebabe00000004")
    assert parse_rtcp(padded) == [RtcpRrPacket(ssrc=0xCAFEBABE)]


def test_sdes_chunk_padding_for_every_text_length() -> None:
    for length in range(12):
        packet = RtcpSdesPacket(chunks=(RtcpSdesChunk(1, ((1, b"x" * length),)), RtcpSdesChunk(2, ())))
        data = bytes(packet)
        assert len(data) % 4 == 0
        assert parse_rtcp(data) == [packet]


def test_sdes_without_terminator_is_rejected() -> None:
    with pytest.raises(RtpParseError, match="terminating null item"):
        parse_rtcp(bytes.fromhex("81ca0002cafebabe01026869"))


def test_packet_type_outside_the_rtcp_range_is_rejected() -> None:
    with pytest.raises(RtpParseError, match="outside 192-223"):
        parse_rtcp(bytes.fromhex("80e00001cafebabe"))


def test_serialisers_refuse_oversized_fields() -> None:
    with pytest.raises(ValueError, match="at most 31"):
        bytes(RtcpByePacket(sources=tuple(range(32))))
    with pytest.raises(ValueError, match="255 bytes"):
        bytes(RtcpByePacket(sources=(1,), reason=b"x" * 256))
    with pytest.raises(ValueError, match="type 1-255"):
        bytes(RtcpSdesPacket(chunks=(RtcpSdesChunk(1, ((0, b"x"),)),)))
