"""RFC 3264 offer/answer with SDES: our offer, their answer, their offers (initial, hold, resume)."""

from __future__ import annotations

import base64
import contextlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media_worker.negotiation import (
    RTP_CODECS,
    FailureReason,
    MediaParams,
    NegotiationFailed,
    Offer,
    answer_offer,
    build_offer,
    process_answer,
    with_next_version,
)
from media_worker.rtp.suites import SUITES
from media_worker.sdp import Direction, SessionDescription

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sdp"
BARESIP_KEY = base64.b64decode("JTA7RlFcZ3J9iJOeqbS/ytXg6/YBDBciLThDTllk")
FS_TAG3_KEY = base64.b64decode("b3qFkJumsbzH0t3o8/4JFB8qNUBLVmFsd4KNmKOu")
FS_TAG4_KEY = base64.b64decode("lJ+qtcDL1uHs9wINGCMuOURPWmVwe4aRnKeyvcjT")
ALL_CODECS = ("PCMU", "PCMA", "G722")


def load(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8").replace("\n", "\r\n")


def urandom_from(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def offer(**overrides: Any) -> Offer:
    arguments: dict[str, Any] = {
        "local_address": "127.0.0.1",
        "rtp_port": 20000,
        "codecs": ("PCMU", "PCMA"),
        "suites": ("AES_CM_128_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_80"),
        "session_id": 42,
        "session_version": 1,
        "urandom": urandom_from(1),
    }
    return build_offer(**(arguments | overrides))


def answer(sdp: str | SessionDescription, **overrides: Any) -> tuple[str, MediaParams]:
    arguments: dict[str, Any] = {
        "local_address": "127.0.0.1",
        "rtp_port": 30000,
        "codecs": ALL_CODECS,
        "suites": ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"),
        "session_id": 7,
        "session_version": 7,
        "urandom": urandom_from(2),
    }
    return answer_offer(sdp, **(arguments | overrides))


def failure(call: Callable[[], object]) -> NegotiationFailed:
    with pytest.raises(NegotiationFailed) as info:
        call()
    return info.value


# --- build_offer ---------------------------------------------------------------------------------------


def test_offer_text() -> None:
    made = offer()
    key1 = base64.b64encode(made.crypto[0].key_salt).decode()
    key2 = base64.b64encode(made.crypto[1].key_salt).decode()
    assert str(made) == (
        "v=0\r\no=- 42 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 20000 RTP/SAVP 0 8 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
        "a=ptime:20\r\na=rtcp:20001\r\na=sendrecv\r\n"
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key1}\r\n"
        f"a=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:{key2}\r\n"
    )
    assert [len(c.key_salt) for c in made.crypto] == [30, 46]
    assert SessionDescription.parse(str(made)) == made.description


def test_offer_keys_come_from_urandom_only() -> None:
    assert offer().crypto == offer().crypto
    assert offer().crypto != offer(urandom=urandom_from(99)).crypto


def test_offer_codec_order_ipv6_direction_and_no_dtmf() -> None:
    made = offer(
        local_address="::1",
        codecs=("G722", "PCMA"),
        suites=("AEAD_AES_256_GCM",),
        direction="recvonly",
        ptime_ms=30,
        telephone_event_pt=None,
    )
    media = made.description.media[0]
    assert media.formats == ("9", "8")
    assert made.description.origin.address_type == "IP6"
    assert media.direction is Direction.RECVONLY
    assert media.ptime == 30
    assert [c.suite for c in media.crypto()] == ["AEAD_AES_256_GCM"]
    assert len(made.crypto[0].key_salt) == SUITES["AEAD_AES_256_GCM"].key_salt_length


@pytest.mark.parametrize(
    "overrides",
    [
        {"codecs": ()},
        {"codecs": ("opus",)},
        {"codecs": ("PCMU", "PCMU")},
        {"suites": ()},
        {"suites": ("AEAD_AES_256_GCM_8",)},
        {"suites": ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_80")},
        {"rtp_port": 65535},
        {"rtp_port": 0},
        {"ptime_ms": 5},
        {"direction": "sideways"},
    ],
)
def test_offer_refuses_bad_arguments(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by argument; the type is the contract
        offer(**overrides)


def test_offer_repr_hides_keys() -> None:
    made = offer()
    for crypto in made.crypto:
        assert base64.b64encode(crypto.key_salt).decode() not in repr(made)


# --- process_answer ------------------------------------------------------------------------------------


def test_baresip_answer() -> None:
    made = offer()
    params = process_answer(made, load("baresip_answer.sdp"))
    assert params.remote_rtp == ("127.0.0.1", 10166)
    assert params.remote_rtcp == ("127.0.0.1", 10167)
    assert (params.codec, params.payload_type, params.clock_rate) == ("PCMU", 0, 8000)
    assert params.telephone_event_pt == 101
    assert params.ptime_ms == 20
    assert params.direction is Direction.SENDRECV
    assert (params.suite, params.crypto_tag) == ("AES_CM_128_HMAC_SHA1_80", 1)
    assert params.local_key_salt == made.crypto[0].key_salt
    assert params.remote_key_salt == BARESIP_KEY
    assert params.remote_key_lifetime is None
    assert "JTA7" not in repr(params)
    assert base64.b64encode(params.local_key_salt).decode() not in repr(params)


def test_answer_with_trailing_whitespace_and_parsed_form() -> None:
    made = offer()
    text = load("baresip_answer.sdp")
    expected = process_answer(made, text)
    assert process_answer(made, text + "\r\n \r\n") == expected
    assert process_answer(made, SessionDescription.parse(text)) == expected


def test_baresip_quirk_own_suite_under_our_tag_is_refused() -> None:
    made = offer(suites=("AES_256_CM_HMAC_SHA1_80",))
    error = failure(lambda: process_answer(made, load("baresip_answer.sdp")))
    assert error.reason is FailureReason.NO_COMMON_CRYPTO
    assert error.status_code == 488


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda t: load("avp_answer.sdp"), FailureReason.NO_SRTP),
        (lambda t: t.replace("m=audio 10166", "m=audio 0"), FailureReason.STREAM_REJECTED),
        (lambda t: t.replace("c=IN IP4 127.0.0.1\r\n", ""), FailureReason.NO_CONNECTION_ADDRESS),
        (
            lambda t: t.replace("c=IN IP4 127.0.0.1", "c=IN IP4 224.2.1.1/127"),
            FailureReason.NO_CONNECTION_ADDRESS,
        ),
        (lambda t: t.replace("RTP/SAVP 0 101", "RTP/SAVP 9 101"), FailureReason.NO_COMMON_CODEC),
        (lambda t: t.replace("RTP/SAVP 0 101", "RTP/SAVP x"), FailureReason.MALFORMED_SDP),
        (lambda t: t.replace("a=crypto:1 ", "a=crypto:7 "), FailureReason.NO_COMMON_CRYPTO),
        (lambda t: t.replace("ThDTllk", "ThDTllk|2^20|1:4"), FailureReason.NO_COMMON_CRYPTO),
        (lambda t: t.replace("ThDTllk", "ThDTll"), FailureReason.NO_COMMON_CRYPTO),
        (lambda t: t.replace("inline:", "inlin:"), FailureReason.NO_COMMON_CRYPTO),
        (lambda t: t.split("a=crypto")[0] + "a=ptime:20\r\n", FailureReason.NO_SRTP),
        (lambda t: t.replace("RTP/SAVP", "UDP/TLS/RTP/SAVP"), FailureReason.UNSUPPORTED_TRANSPORT),
        (lambda t: t.replace("m=audio", "m=video"), FailureReason.NO_AUDIO_STREAM),
        (lambda t: t + "m=video 0 RTP/SAVP 96\r\n", FailureReason.MALFORMED_SDP),
        (lambda t: t.replace("a=ptime:20", "a=rtcp:x"), FailureReason.MALFORMED_SDP),
        (lambda t: t.replace("v=0", "v=1"), FailureReason.MALFORMED_SDP),
        (lambda t: "garbage", FailureReason.MALFORMED_SDP),
    ],
)
def test_bad_answers_fail_with_a_reason(edit: Callable[[str], str], reason: FailureReason) -> None:
    error = failure(lambda: process_answer(offer(), edit(load("baresip_answer.sdp"))))
    assert error.reason is reason
    assert str(error).startswith(reason.value)
    assert "JTA7" not in str(error)


@pytest.mark.parametrize(
    ("answered", "ours"),
    [
        ("sendrecv", Direction.SENDRECV),
        ("recvonly", Direction.SENDONLY),
        ("sendonly", Direction.RECVONLY),
        ("inactive", Direction.INACTIVE),
    ],
)
def test_answer_direction_from_our_side(answered: str, ours: Direction) -> None:
    text = load("baresip_answer.sdp").replace("a=sendrecv", f"a={answered}")
    assert process_answer(offer(), text).direction is ours


def test_answer_null_address_means_we_do_not_send() -> None:
    text = load("baresip_answer.sdp").replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")
    assert process_answer(offer(), text).direction is Direction.RECVONLY


@pytest.mark.parametrize(("line", "ptime"), [("a=ptime:30", 30), ("a=ptime:abc", 20), ("a=ptime:5", 20)])
def test_answer_ptime(line: str, ptime: int) -> None:
    text = load("baresip_answer.sdp").replace("a=ptime:20", line)
    assert process_answer(offer(), text).ptime_ms == ptime
    no_ptime = load("baresip_answer.sdp").replace("a=ptime:20\r\n", "")
    assert process_answer(offer(ptime_ms=40), no_ptime).ptime_ms == 40


def test_answer_lifetime_and_rtcp_attribute_are_used() -> None:
    text = (
        load("baresip_answer.sdp")
        .replace("ThDTllk", "ThDTllk|2^31")
        .replace("a=ptime:20", "a=rtcp:10200 IN IP4 127.0.0.2")
    )
    params = process_answer(offer(), text)
    assert params.remote_key_lifetime == 2**31
    assert params.remote_rtcp == ("127.0.0.2", 10200)


def test_answer_without_telephone_event() -> None:
    text = load("baresip_answer.sdp").replace("RTP/SAVP 0 101", "RTP/SAVP 0")
    text = text.replace("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n", "")
    assert process_answer(offer(), text).telephone_event_pt is None


# --- answer_offer --------------------------------------------------------------------------------------


def test_seed_offer_with_example_keys_is_refused_cleanly() -> None:
    error = failure(lambda: answer(load("chime_seed_offer.sdp")))
    assert error.reason is FailureReason.NO_COMMON_CRYPTO
    assert "EXAMPLE" not in str(error)


def test_seed_offer_with_real_keys_is_answered_by_our_suite_preference() -> None:
    keys = {
        "AEAD_AES_256_GCM": 44,
        "AEAD_AES_256_GCM_8": 44,
        "AES_256_CM_HMAC_SHA1_80": 46,
        "AES_256_CM_HMAC_SHA1_32": 46,
        "AES_CM_128_HMAC_SHA1_80": 30,
        "AES_CM_128_HMAC_SHA1_32": 30,
    }
    lines = []
    for line in load("chime_seed_offer.sdp").split("\r\n"):
        if line.startswith("a=crypto:"):
            suite = line.split(" ")[1]
            line = line.replace("EXAMPLE", base64.b64encode(bytes(keys[suite])).decode())
        lines.append(line)
    text, params = answer(
        "\r\n".join(lines), codecs=("PCMA",), suites=("AES_CM_128_HMAC_SHA1_32", "AEAD_AES_256_GCM")
    )
    assert (params.suite, params.crypto_tag) == ("AES_CM_128_HMAC_SHA1_32", 6)
    assert (params.codec, params.payload_type) == ("PCMA", 8)
    assert params.remote_rtp == ("IPaddress", 4000)
    assert params.remote_rtcp == ("IPaddress", 4001)
    assert params.telephone_event_pt == 101
    assert params.remote_key_salt == bytes(30)
    sd = SessionDescription.parse(text)
    (media,) = sd.media
    assert media.formats == ("8", "101")
    assert media.fmtp(101) == "0-16"
    (crypto,) = media.crypto()
    assert (crypto.tag, crypto.suite) == (6, "AES_CM_128_HMAC_SHA1_32")
    assert crypto.usable_key_salt() == params.local_key_salt
    assert sd.origin.session_id == "7"


def test_freeswitch_offer_skips_mki_and_refuses_video() -> None:
    text, params = answer(load("freeswitch_offer.sdp"))
    assert (params.suite, params.crypto_tag) == ("AES_CM_128_HMAC_SHA1_80", 3)  # tag 2 has an MKI
    assert params.remote_key_salt == FS_TAG3_KEY
    assert params.remote_key_lifetime == 2**31
    assert (params.codec, params.payload_type) == ("G722", 9)  # the offerer's first choice
    assert params.remote_rtcp == ("192.0.2.10", 23457)
    assert params.direction is Direction.SENDRECV
    audio, video = SessionDescription.parse(text).media
    assert (audio.port, audio.proto, audio.formats) == (30000, "RTP/SAVP", ("9", "101"))
    assert audio.rtcp is not None
    assert audio.rtcp.port == 30001
    assert audio.ptime == 20
    assert (video.kind, video.port) == ("video", 0)


def test_our_suite_order_beats_the_offerers() -> None:
    _, params = answer(
        load("freeswitch_offer.sdp"), suites=("AES_CM_128_HMAC_SHA1_32", "AES_CM_128_HMAC_SHA1_80")
    )
    assert (params.crypto_tag, params.remote_key_salt) == (4, FS_TAG4_KEY)


def test_hold_and_resume_reoffers() -> None:
    first_text, first = answer(load("freeswitch_offer.sdp"))
    first_sd = SessionDescription.parse(first_text)
    hold = load("freeswitch_hold_reoffer.sdp")
    hold_text, held = answer(hold, previous=first_sd, current=first, urandom=urandom_from(3))
    hold_sd = SessionDescription.parse(hold_text)
    assert held.direction is Direction.RECVONLY
    assert hold_sd.media_direction(hold_sd.media[0]) is Direction.RECVONLY
    assert held.local_key_salt == first.local_key_salt  # same suite: keep our SRTP context
    assert hold_sd.origin.session_id == first_sd.origin.session_id
    assert hold_sd.origin.session_version == first_sd.origin.session_version + 1
    resume = load("freeswitch_offer.sdp").replace(" 1718200001 ", " 1718200003 ")
    resume_text, resumed = answer(resume, previous=hold_sd, current=held, urandom=urandom_from(4))
    assert resumed.direction is Direction.SENDRECV
    assert SessionDescription.parse(resume_text).origin.session_version == hold_sd.origin.session_version + 1
    # The same offer again (a session refresh) changes nothing, so the version stays.
    again_text, again = answer(resume, previous=SessionDescription.parse(resume_text), current=resumed)
    assert again_text == resume_text
    assert again == resumed


def test_reoffer_with_another_suite_gets_a_fresh_key() -> None:
    _, first = answer(load("freeswitch_offer.sdp"))
    _, second = answer(
        load("freeswitch_offer.sdp"),
        suites=("AES_CM_128_HMAC_SHA1_32",),
        current=first,
        urandom=urandom_from(5),
    )
    assert second.suite != first.suite
    assert second.local_key_salt != first.local_key_salt


@pytest.mark.parametrize(
    ("offered", "answered"),
    [
        ("sendonly", Direction.RECVONLY),
        ("recvonly", Direction.SENDONLY),
        ("inactive", Direction.INACTIVE),
        ("sendrecv", Direction.SENDRECV),
    ],
)
def test_answer_direction_reverses_the_offer(offered: str, answered: Direction) -> None:
    text = load("freeswitch_offer.sdp").replace("a=sendrecv", f"a={offered}", 1)
    assert answer(text)[1].direction is answered


def test_our_willingness_limits_the_answer() -> None:
    assert answer(load("freeswitch_offer.sdp"), direction="sendonly")[1].direction is Direction.SENDONLY
    text = load("freeswitch_hold_reoffer.sdp")
    assert answer(text, direction=Direction.SENDONLY)[1].direction is Direction.INACTIVE


def test_old_style_hold_address_stops_our_sending() -> None:
    text = load("freeswitch_offer.sdp").replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0")
    assert answer(text)[1].direction is Direction.RECVONLY


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda t: t.replace("RTP/SAVP", "RTP/AVP"), FailureReason.NO_SRTP),
        (lambda t: t.replace("m=audio 23456", "m=audio 0"), FailureReason.NO_AUDIO_STREAM),
        (lambda t: t.replace("RTP/SAVP 9 0 8 101 13", "RTP/SAVP 18 13"), FailureReason.NO_COMMON_CODEC),
        (lambda t: t.replace("c=IN IP4 192.0.2.10\r\n", ""), FailureReason.NO_CONNECTION_ADDRESS),
        (lambda t: t.replace("s=FreeSWITCH\r\n", ""), FailureReason.MALFORMED_SDP),
    ],
)
def test_bad_offers_fail_with_a_reason(edit: Callable[[str], str], reason: FailureReason) -> None:
    assert failure(lambda: answer(edit(load("freeswitch_offer.sdp")))).reason is reason


def test_answer_needs_an_origin() -> None:
    with pytest.raises(ValueError, match="session_id"):
        answer(load("freeswitch_offer.sdp"), session_id=None)


def test_with_next_version() -> None:
    made = offer()
    assert with_next_version(made.description, made.description) == made.description
    changed = offer(ptime_ms=30, session_id=1, session_version=99).description
    bumped = with_next_version(made.description, changed)
    assert (bumped.origin.session_id, bumped.origin.session_version) == ("42", 2)


def test_codec_table_matches_the_contract() -> None:
    from chalicelib.contract import CODECS, SRTP_SUITES

    assert set(CODECS) <= set(RTP_CODECS)
    assert set(SRTP_SUITES) <= set(SUITES)


# --- both roles together -------------------------------------------------------------------------------


@given(
    codecs_a=st.lists(st.sampled_from(ALL_CODECS), min_size=1, max_size=3, unique=True),
    codecs_b=st.lists(st.sampled_from(ALL_CODECS), min_size=1, max_size=3, unique=True),
    suites_a=st.lists(st.sampled_from(sorted(SUITES)), min_size=1, max_size=6, unique=True),
    suites_b=st.lists(st.sampled_from(sorted(SUITES)), min_size=1, max_size=6, unique=True),
    direction_a=st.sampled_from(list(Direction)),
    direction_b=st.sampled_from(list(Direction)),
    ptime=st.sampled_from([10, 20, 30, 40]),
    seed=st.integers(0, 2**32),
)
def test_offer_answer_agree_both_ways(
    codecs_a: list[str],
    codecs_b: list[str],
    suites_a: list[str],
    suites_b: list[str],
    direction_a: Direction,
    direction_b: Direction,
    ptime: int,
    seed: int,
) -> None:
    made = build_offer(
        local_address="127.0.0.1",
        rtp_port=40000,
        codecs=codecs_a,
        suites=suites_a,
        ptime_ms=ptime,
        direction=direction_a,
        session_id=1,
        session_version=1,
        urandom=urandom_from(seed),
    )
    common_codecs = [c for c in codecs_a if c in codecs_b]

    def respond() -> tuple[str, MediaParams]:
        return answer_offer(
            str(made),
            local_address="::1",
            rtp_port=50000,
            codecs=codecs_b,
            suites=suites_b,
            direction=direction_b,
            session_id=2,
            urandom=urandom_from(seed + 1),
        )

    if not set(suites_a) & set(suites_b):
        assert failure(respond).reason is FailureReason.NO_COMMON_CRYPTO
        return
    if not common_codecs:
        assert failure(respond).reason is FailureReason.NO_COMMON_CODEC
        return
    text, theirs = respond()
    ours = process_answer(made, text)
    assert ours.local_key_salt == theirs.remote_key_salt
    assert ours.remote_key_salt == theirs.local_key_salt
    assert ours.local_key_salt != ours.remote_key_salt
    assert ours.suite == theirs.suite == next(s for s in suites_b if s in suites_a)
    assert ours.crypto_tag == theirs.crypto_tag
    assert ours.codec == theirs.codec == common_codecs[0]
    assert ours.payload_type == theirs.payload_type
    assert ours.remote_rtp == ("::1", 50000)
    assert theirs.remote_rtp == ("127.0.0.1", 40000)
    assert (ours.remote_rtcp, theirs.remote_rtcp) == (("::1", 50001), ("127.0.0.1", 40001))
    assert ours.direction.sends == theirs.direction.receives
    assert ours.direction.receives == theirs.direction.sends
    assert ours.ptime_ms == 20
    assert theirs.ptime_ms == ptime
    assert ours.telephone_event_pt == theirs.telephone_event_pt == 101


_MEDIA_LINES = st.sampled_from(
    [
        "m=audio 4000 RTP/SAVP 0 8 101",
        "m=audio 0 RTP/SAVP 0",
        "m=audio 4000 RTP/AVP 0",
        "m=audio 4000 RTP/SAVPF 96 x",
        "m=audio 70 RTP/SAVP 200",
        "m=video 5000 RTP/SAVP 96",
        "m=audio 4000/2 RTP/SAVP 9",
    ]
)
_ATTRIBUTE_LINES = st.sampled_from(
    [
        "c=IN IP4 127.0.0.1",
        "c=IN IP6 ::1",
        "c=IN IP4 0.0.0.0",
        "c=IN IP4 224.0.0.1/2",
        "c=ATM NSAP 47",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:96 PCMA/8000",
        "a=rtpmap:96 pcmu",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=ptime:1e999",
        "a=ptime:nan",
        "a=rtcp:4001",
        "a=rtcp:99999",
        "a=rtcp:4001 IN IP4",
        "a=sendonly",
        "a=inactive",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:JTA7RlFcZ3J9iJOeqbS/ytXg6/YBDBciLThDTllk",
        "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:JTA7RlFcZ3J9iJOeqbS/ytXg6/YBDBciLThDTllk|2^20|1:4",
        "a=crypto:1 AEAD_AES_256_GCM inline:EXAMPLE",
        "a=crypto:x",
        "a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:KEY|9999999999999999999999",
    ]
)


@given(st.lists(st.one_of(_MEDIA_LINES, _ATTRIBUTE_LINES), max_size=14))
def test_any_offer_or_answer_is_handled_or_refused(lines: list[str]) -> None:
    text = "\r\n".join(["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", *lines]) + "\r\n"
    try:
        answer_text, params = answer(text)
    except NegotiationFailed:
        pass
    else:
        assert [m.port for m in SessionDescription.parse(answer_text).media].count(30000) == 1
        assert params.remote_key_salt == BARESIP_KEY
    with contextlib.suppress(NegotiationFailed):
        process_answer(offer(), text)
