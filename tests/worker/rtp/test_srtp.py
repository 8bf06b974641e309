from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from media_worker.rtp import srtp
from media_worker.rtp.srtp import SrtpContext, SrtpError, SrtpFailure, SrtpUnsupportedError
from media_worker.rtp.suites import SUITES
from tests.worker.rtp.reference_srtp import ReferenceSrtpSender, aes_cm_keystream, derive

ALL_SUITES = sorted(SUITES)
CM_SUITES = [name for name in ALL_SUITES if "_CM_" in name]


def key_salt(suite: str, seed: int) -> bytes:
    return bytes((seed + 7 * i) & 0xFF for i in range(SUITES[suite].key_salt_length))


def rtp(seq: int, payload: bytes = b"\xab" * 160, *, ssrc: int = 0xCAFEBABE, ts: int = 1000) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, ts, ssrc) + payload


def rtcp_rr(ssrc: int = 0xCAFEBABE) -> bytes:
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


def pair(suite: str) -> tuple[SrtpContext, SrtpContext]:
    a, b = key_salt(suite, 1), key_salt(suite, 2)
    return SrtpContext(suite, a, b), SrtpContext(suite, b, a)


# ----- every suite: round trip, tamper, replay, SRTCP ------------------------------------------------


@pytest.mark.parametrize("suite", ALL_SUITES)
def test_rtp_round_trip_adds_the_suite_tag(suite: str) -> None:
    alice, bob = pair(suite)
    for seq in (65534, 65535, 0, 1):  # across a sequence wrap (ROC 0 -> 1)
        packet = rtp(seq)
        protected = alice.protect_rtp(packet)
        assert len(protected) == len(packet) + SUITES[suite].rtp_auth_tag_length
        assert protected[12:] != packet[12:]
        assert bob.unprotect_rtp(protected) == packet


@pytest.mark.parametrize("suite", ALL_SUITES)
@pytest.mark.parametrize("offset", [3, 20, -1])  # header, payload, tag
def test_tampered_rtp_is_rejected(suite: str, offset: int) -> None:
    alice, bob = pair(suite)
    tampered = bytearray(alice.protect_rtp(rtp(10)))
    tampered[offset] ^= 0x01
    with pytest.raises(SrtpError) as excinfo:
        bob.unprotect_rtp(bytes(tampered))
    assert excinfo.value.failure is SrtpFailure.AUTHENTICATION


@pytest.mark.parametrize("suite", ALL_SUITES)
def test_replayed_rtp_is_rejected(suite: str) -> None:
    alice, bob = pair(suite)
    protected = alice.protect_rtp(rtp(10))
    bob.unprotect_rtp(protected)
    with pytest.raises(SrtpError) as excinfo:
        bob.unprotect_rtp(protected)
    assert excinfo.value.failure is SrtpFailure.REPLAY


@pytest.mark.parametrize("suite", ALL_SUITES)
def test_rtp_from_the_wrong_key_is_rejected(suite: str) -> None:
    alice, _ = pair(suite)
    stranger = SrtpContext(suite, key_salt(suite, 3), key_salt(suite, 3))
    with pytest.raises(SrtpError) as excinfo:
        stranger.unprotect_rtp(alice.protect_rtp(rtp(10)))
    assert excinfo.value.failure is SrtpFailure.AUTHENTICATION


@pytest.mark.parametrize("suite", ALL_SUITES)
def test_rtcp_round_trip_tamper_and_replay(suite: str) -> None:
    alice, bob = pair(suite)
    report = rtcp_rr() + bytes(24)
    protected = alice.protect_rtcp(report)
    # RFC 3711 §3.4: E|index word plus an 80-bit tag for every CM suite (RFC 6188 too); GCM adds its 16.
    assert len(protected) == len(report) + 4 + (16 if "GCM" in suite else 10)
    assert bob.unprotect_rtcp(protected) == report
    with pytest.raises(SrtpError) as replay:
        bob.unprotect_rtcp(protected)
    assert replay.value.failure is SrtpFailure.REPLAY
    tampered = bytearray(alice.protect_rtcp(report))
    tampered[10] ^= 0x80
    with pytest.raises(SrtpError) as tamper:
        bob.unprotect_rtcp(bytes(tampered))
    assert tamper.value.failure is SrtpFailure.AUTHENTICATION


@pytest.mark.parametrize("suite", ALL_SUITES)
@pytest.mark.parametrize("junk", [b"", b"\x80", b"\x80\x00\x00\x01", b"\x80" * 2000])
def test_junk_is_an_srtp_error_not_a_crash(suite: str, junk: bytes) -> None:
    _, bob = pair(suite)
    with pytest.raises(SrtpError):
        bob.unprotect_rtp(junk)
    with pytest.raises(SrtpError):
        bob.unprotect_rtcp(junk)


# ----- independent reference: byte-for-byte equality --------------------------------------------------


@pytest.mark.parametrize("suite", CM_SUITES)
def test_cm_suites_equal_the_pure_python_reference(suite: str) -> None:
    spec = SUITES[suite]
    material = key_salt(suite, 5)
    context = SrtpContext(suite, material, material)
    reference = ReferenceSrtpSender(material, spec.key_length, spec.rtp_auth_tag_length)
    for i, seq in enumerate([65533, 65534, 65535, 0, 1, 2]):
        packet = rtp(seq, bytes(range(i, i + 97)), ts=160 * i)
        assert context.protect_rtp(packet) == reference.protect_rtp(packet)
    # a packet with CSRCs and a header extension: both stay in the clear, only the payload is encrypted
    extended = struct.pack("!BBHIII", 0x91, 0, 3, 480, 0xCAFEBABE, 0x01020304) + b"\xbe\xde\x00\x01abcd"
    assert context.protect_rtp(extended + b"payload") == reference.protect_rtp(extended + b"payload")


@pytest.mark.parametrize("suite", CM_SUITES)
def test_cm_suites_srtcp_equals_the_pure_python_reference(suite: str) -> None:
    spec = SUITES[suite]
    material = key_salt(suite, 9)
    context = SrtpContext(suite, material, material)
    reference = ReferenceSrtpSender(material, spec.key_length, spec.rtp_auth_tag_length)
    for _ in range(3):
        report = rtcp_rr() + bytes(range(24))
        protected = context.protect_rtcp(report)
        index = struct.unpack_from("!I", protected, len(protected) - 14)[0] & 0x7FFF_FFFF
        assert protected == reference.protect_rtcp(report, index)


def test_reference_keystream_matches_rfc3711_appendix_b2() -> None:
    keystream = aes_cm_keystream(
        bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C"), int("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000", 16), 48
    )
    assert keystream.hex().upper() == (
        "E03EAD0935C95E80E166B16DD92B4EB4D23513162B02D0F72A43A2FE4A5F97AB41E95B3BB0A2E8DD477901E4FCA894C0"
    )


def test_reference_kdf_matches_rfc3711_appendix_b3() -> None:
    key, salt = (
        bytes.fromhex("E1F97A0D3E018BE0D64FA32C06DE4139"),
        bytes.fromhex("0EC675AD498AFEEBB6960B3AABE6"),
    )
    assert derive(key, salt, 0, 16).hex().upper() == "C61E7A93744F39EE10734AFE3FF7A087"
    assert derive(key, salt, 2, 14).hex().upper() == "30CBBC08863D8C85D49DB34A9AE1"
    assert derive(key, salt, 1, 20).hex().upper() == "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"


def test_reference_kdf_matches_rfc6188_section_7_2() -> None:
    key = bytes.fromhex("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6")
    salt = bytes.fromhex("3b04803de51ee7c96423ab5b78d2")
    assert (
        derive(key, salt, 0, 32).hex() == "5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4"
    )
    assert derive(key, salt, 2, 14).hex() == "fa31791685ca444a9e07c6c64e93"
    assert derive(key, salt, 1, 20).hex() == "fd9c32d39ed5fbb5a9dc96b30818454d1313dc05"


@pytest.mark.parametrize(
    ("suite", "material", "expected"),
    [
        (  # libsrtp srtp_driver AES-128 vector (RFC 3711 B.3 master key/salt)
            "AES_CM_128_HMAC_SHA1_80",
            "e1f97a0d3e018be0d64fa32c06de41390ec675ad498afeebb6960b3aabe6",
            "800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb",
        ),
        (  # libsrtp srtp_driver AES-256 vector (RFC 6188 §7.2 master key/salt)
            "AES_256_CM_HMAC_SHA1_80",
            "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b63b04803de51ee7c96423ab5b78d2",
            "800f1234decafbadcafebabef1d9de17ff251ff1aa007774b0b4b40da08d9d9a5b3a55d8873b",
        ),
    ],
)
def test_published_packet_vectors(suite: str, material: str, expected: str) -> None:
    plain = bytes.fromhex("800f1234decafbadcafebabe" + "ab" * 16)
    key = bytes.fromhex(material)
    assert SrtpContext(suite, key, key).protect_rtp(plain).hex() == expected
    spec = SUITES[suite]
    assert ReferenceSrtpSender(key, spec.key_length, 10).protect_rtp(plain).hex() == expected


# ----- API hygiene -------------------------------------------------------------------------------------


def test_keys_never_appear_in_repr_or_errors() -> None:
    material = bytes(range(46))
    context = SrtpContext("AES_256_CM_HMAC_SHA1_80", material, material)
    assert repr(context) == "SrtpContext(suite='AES_256_CM_HMAC_SHA1_80')"
    with pytest.raises(SrtpError) as excinfo:
        context.unprotect_rtp(rtp(1) + bytes(10))
    for text in (repr(context), str(excinfo.value)):
        assert material.hex() not in text
        assert "0001020304" not in text
    with pytest.raises(ValueError, match="must be 46 bytes, got 30") as wrong:
        SrtpContext("AES_256_CM_HMAC_SHA1_80", material[:30], material)
    assert material[:30].hex() not in str(wrong.value)


def test_unknown_suite_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported SRTP crypto-suite 'F8_128_HMAC_SHA1_80'"):
        SrtpContext("F8_128_HMAC_SHA1_80", bytes(30), bytes(30))


@pytest.fixture
def fresh_support_checks() -> Iterator[None]:
    srtp._aes_256_cm_policy_setters.cache_clear()
    srtp._verify_aes_256_cm_support.cache_clear()
    yield
    srtp._aes_256_cm_policy_setters.cache_clear()
    srtp._verify_aes_256_cm_support.cache_clear()


@pytest.mark.usefixtures("fresh_support_checks")
def test_missing_libsrtp_symbols_give_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoSuchLibrary:
        __file__ = "/nonexistent/_binding.so"

    monkeypatch.setattr(srtp, "_binding", NoSuchLibrary())
    with pytest.raises(SrtpUnsupportedError, match="does not export the AES_256_CM crypto policies"):
        SrtpContext("AES_256_CM_HMAC_SHA1_32", bytes(46), bytes(46))


@pytest.mark.usefixtures("fresh_support_checks")
def test_failed_known_answer_test_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(srtp, "_KAT_TAG_80", bytes(10))
    with pytest.raises(SrtpUnsupportedError, match="failed the AES_256_CM_HMAC_SHA1_80 known-answer test"):
        SrtpContext("AES_256_CM_HMAC_SHA1_80", bytes(46), bytes(46))


def test_aes_256_cm_session_rejects_other_tag_lengths() -> None:
    with pytest.raises(ValueError, match="80 or 32"):
        srtp.Aes256CmSession(bytes(46), tag_bits=64, inbound=False)


@pytest.mark.parametrize("suite", ALL_SUITES)
def test_in_place_protect_and_unprotect_equal_the_bytes_api(suite: str) -> None:
    alice, bob = pair(suite)
    reference_alice, reference_bob = pair(suite)
    for seq in (65535, 0, 1):
        packet = rtp(seq)
        alice.tx_buffer[: len(packet)] = packet
        size = alice.protect_rtp_in_place(len(packet))
        protected = bytes(alice.tx_view[:size])
        assert protected == reference_alice.protect_rtp(packet)  # same keystream, index and tag
        bob.rx_buffer[:size] = protected
        assert bob.rx_buffer[: bob.unprotect_rtp_in_place(size)] == packet
        assert reference_bob.unprotect_rtp(protected) == packet


def test_in_place_failures_raise_like_the_bytes_api() -> None:
    alice, bob = pair("AES_CM_128_HMAC_SHA1_80")
    protected = bytearray(alice.protect_rtp(rtp(7)))
    protected[-1] ^= 1
    bob.rx_buffer[: len(protected)] = protected
    with pytest.raises(SrtpError) as failure:
        bob.unprotect_rtp_in_place(len(protected))
    assert failure.value.failure is SrtpFailure.AUTHENTICATION
    with pytest.raises(SrtpError) as too_long:
        alice.protect_rtp_in_place(len(alice.tx_buffer))  # no room left for the tag
    assert too_long.value.failure is SrtpFailure.MALFORMED
