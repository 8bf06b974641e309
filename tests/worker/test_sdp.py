"""SessionDescription parse/str: real captures round-trip; anything else is an SdpError."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media_worker.sdp import (
    MAX_SDP_LENGTH,
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtcpAttribute,
    RtpMap,
    SdpError,
    SessionDescription,
    Timing,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sdp"
CAPTURES = sorted(p.name for p in FIXTURES.glob("*.sdp"))


def load(name: str, *, crlf: bool = True) -> str:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return text.replace("\n", "\r\n") if crlf else text


def test_fixtures_exist() -> None:
    assert len(CAPTURES) >= 5


@pytest.mark.parametrize("crlf", [True, False])
@pytest.mark.parametrize("name", CAPTURES)
def test_capture_round_trips(name: str, crlf: bool) -> None:
    text = load(name, crlf=crlf)
    parsed = SessionDescription.parse(text)
    assert str(parsed) == text
    assert parsed.line_ending == ("\r\n" if crlf else "\n")
    assert SessionDescription.parse(text.encode()) == parsed


@pytest.mark.parametrize("tail", ["\r\n", "\r\n\r\n", "  \t", "\n \r\n", " "])
@pytest.mark.parametrize("name", CAPTURES)
def test_trailing_whitespace_is_kept(name: str, tail: str) -> None:
    text = load(name) + tail
    parsed = SessionDescription.parse(text)
    assert str(parsed) == text
    assert parsed.media == SessionDescription.parse(load(name)).media


def test_missing_final_line_ending_round_trips() -> None:
    text = load("baresip_answer.sdp").removesuffix("\r\n")
    parsed = SessionDescription.parse(text)
    assert parsed.trailer == ""
    assert str(parsed) == text


@pytest.mark.parametrize("garbage", ["garbage\r\n", "x=unknown\r\n", "\r\nv=0\r\n", "m=audio\r\n", "\x00"])
@pytest.mark.parametrize("name", CAPTURES)
def test_trailing_garbage_is_an_sdp_error(name: str, garbage: str) -> None:
    with pytest.raises(SdpError):
        SessionDescription.parse(load(name) + garbage)


def test_seed_offer_fields() -> None:
    sd = SessionDescription.parse(load("chime_seed_offer.sdp"))
    assert sd.origin == Origin("-", "3775321410", 3775321410, "IN", "IP4", "IPaddress")
    assert sd.session_name == "pjmedia"
    assert sd.bandwidths == (Bandwidth("AS", 117),)
    assert sd.timing == (Timing(0, 0),)
    assert sd.attributes == (Attribute("X-nat", "0"),)
    assert sd.connection is None
    (audio,) = sd.media
    assert (audio.kind, audio.port, audio.port_count, audio.proto) == ("audio", 4000, None, "RTP/SAVP")
    assert audio.formats == ("0", "3", "8", "9", "125", "101")
    assert audio.payload_types == (0, 3, 8, 9, 125, 101)
    assert audio.connection == Connection("IN", "IP4", "IPaddress")
    assert sd.media_connection(audio) == audio.connection
    assert audio.bandwidths == (Bandwidth("TIAS", 96000),)
    assert audio.rtcp == RtcpAttribute(4001, Connection("IN", "IP4", "IPaddress"))
    assert audio.direction is Direction.SENDRECV
    assert audio.rtpmap(125) == RtpMap(125, "opus", 48000, 2)
    assert audio.rtpmap(0) == RtpMap(0, "PCMU", 8000)
    assert audio.rtpmap(13) is None
    assert audio.fmtp(125) == "useinbandfec=1"
    assert audio.fmtp(101) == "0-16"
    assert audio.fmtp(0) is None
    assert audio.ptime is None
    crypto = audio.crypto()
    assert [c.tag for c in crypto] == [1, 2, 3, 4, 5, 6]
    assert crypto[1].suite == "AEAD_AES_256_GCM_8"
    assert all(c.keys[0].key_salt_b64 == "EXAMPLE" for c in crypto)


def test_freeswitch_offer_fields() -> None:
    sd = SessionDescription.parse(load("freeswitch_offer.sdp"))
    audio, video = sd.media
    assert sd.connection == Connection("IN", "IP4", "192.0.2.10")
    assert sd.media_connection(video) == sd.connection
    assert sd.attributes == (Attribute("msid-semantic", " WMS 3kEjS9uzgGaQH1sR"),)
    assert audio.ptime == 20
    assert audio.rtcp == RtcpAttribute(23457, Connection("IN", "IP4", "192.0.2.10"))
    assert [str(c.keys[0].lifetime) for c in audio.crypto()] == ["None", "2^31", "2^31", "None"]
    assert (video.kind, video.port, video.formats) == ("video", 23458, ("96",))
    assert sd.media_direction(video) is Direction.SENDRECV


def test_hold_reoffer_direction() -> None:
    sd = SessionDescription.parse(load("freeswitch_hold_reoffer.sdp"))
    assert sd.media_direction(sd.media[0]) is Direction.SENDONLY
    assert sd.origin.session_version == 1718200002


def test_session_level_direction_is_inherited() -> None:
    sd = SessionDescription.parse(load("avp_answer.sdp").replace("a=sendrecv\r\n", ""))
    sd = replace(sd, attributes=(Attribute("inactive"),))
    assert sd.direction is Direction.INACTIVE
    assert sd.media_direction(sd.media[0]) is Direction.INACTIVE


def test_built_description_renders_in_rfc_order() -> None:
    sd = SessionDescription(
        origin=Origin("-", "1", 2, "IN", "IP4", "127.0.0.1"),
        connection=Connection("IN", "IP4", "127.0.0.1"),
        media=(
            MediaDescription(
                "audio",
                5004,
                "RTP/SAVP",
                ("0",),
                attributes=(Attribute("rtpmap", "0 PCMU/8000"), Attribute("recvonly")),
            ),
        ),
    )
    assert str(sd) == (
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 5004 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\n"
    )
    assert SessionDescription.parse(str(sd)) == sd


def test_all_optional_lines_round_trip() -> None:
    text = (
        "v=0\r\no=jdoe 0042 7 IN IP6 ::1\r\ns=Call\r\ni=info\r\nu=http://example.com/\r\n"
        "e=a@example.com\r\ne=b@example.com\r\np=+1 617 555-6011\r\nc=IN IP6 ::1\r\nb=CT:128\r\n"
        "t=2873397496 2873404696\r\nr=7d 1h 0 25h\r\nt=0 0\r\nz=2882844526 -1h\r\nk=prompt\r\n"
        "a=recvonly\r\na=empty:\r\nm=audio 49170/2 RTP/AVP 0\r\ni=audio\r\nc=IN IP6 ::1\r\nb=AS:64\r\n"
        "k=prompt\r\na=ptime:20.0\r\nm=application 9 UDP/BFCP *\r\n"
    )
    sd = SessionDescription.parse(text)
    assert str(sd) == text
    assert sd.origin.session_id == "0042"
    assert sd.timing[0].repeats == ("7d 1h 0 25h",)
    assert sd.media[0].port_count == 2
    assert sd.media[0].ptime == 20
    assert sd.attributes[1] == Attribute("empty", "")
    assert "prompt" not in repr(sd)  # k= may hold a key


def test_out_of_order_lines_are_accepted_and_printed_in_rfc_order() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n"
    )
    sd = SessionDescription.parse(text)
    assert str(sd).index("c=") < str(sd).index("t=")


MINIMAL = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\r\n",
        "v=1\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
        "o=- 1 1 IN IP4 127.0.0.1\r\nv=0\r\ns=-\r\nt=0 0\r\n",
        "v=0\r\ns=-\r\nt=0 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\nt=0 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n",
        "v=0\r\no=- 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
        "v=0\r\no=- 1 x IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
        "v=0\r\no=- 1  1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
        MINIMAL + "v=0\r\n",
        MINIMAL + "s=again\r\n",
        MINIMAL + "c=IN IP4\r\n",
        MINIMAL + "b=AS\r\n",
        MINIMAL + "b=AS:x\r\n",
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nr=7d 1h\r\nt=0 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0\r\n",
        MINIMAL + "x=1\r\n",
        MINIMAL + "V=0\r\n",
        MINIMAL + "a=\r\n",
        MINIMAL + "a=:value\r\n",
        MINIMAL + "\r\na=foo\r\n",
        MINIMAL + "m=audio\r\n",
        MINIMAL + "m=audio x RTP/AVP 0\r\n",
        MINIMAL + "m=audio 70000 RTP/AVP 0\r\n",
        MINIMAL + "m=audio 4000/x RTP/AVP 0\r\n",
        MINIMAL + "m=audio  4000 RTP/AVP 0\r\n",
        MINIMAL + "m=audio 4000 RTP/AVP 0\r\nt=0 0\r\n",
        MINIMAL + "m=audio 4000 RTP/AVP 0\r\nc=IN IP4 a\r\nc=IN IP4 b\r\n",
        MINIMAL + "a=foo\rbar\r\n",
        MINIMAL + "a=nul\x00\r\n",
        MINIMAL + "a=" + "x" * MAX_SDP_LENGTH + "\r\n",
    ],
)
def test_malformed_sdp_is_an_sdp_error(text: str) -> None:
    with pytest.raises(SdpError):
        SessionDescription.parse(text)


def test_invalid_utf8_is_an_sdp_error() -> None:
    with pytest.raises(SdpError, match="UTF-8"):
        SessionDescription.parse(MINIMAL.encode() + b"a=\xff\r\n")


def test_errors_name_the_line_but_never_its_value() -> None:
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(MINIMAL + "b=sekrit-value\r\n")
    assert "line 5" in str(info.value)
    assert "sekrit" not in str(info.value)


def test_helper_errors_are_sdp_errors() -> None:
    media = MediaDescription(
        "audio",
        4000,
        "RTP/SAVP",
        ("x",),
        attributes=(
            Attribute("rtpmap", "0 PCMU"),
            Attribute("ptime", "twenty"),
            Attribute("rtcp", "4001 IN IP4"),
            Attribute("crypto", "1 AES_CM_128_HMAC_SHA1_80 nokey"),
        ),
    )
    for helper in (
        lambda: media.payload_types,
        media.rtpmaps,
        lambda: media.ptime,
        lambda: media.rtcp,
        media.crypto,
    ):
        with pytest.raises(SdpError):
            helper()
    assert MediaDescription("audio", 1, "RTP/AVP", ("128",)).port == 1
    with pytest.raises(SdpError):
        _ = MediaDescription("audio", 1, "RTP/AVP", ("128",)).payload_types


def test_repr_hides_crypto_keys() -> None:
    sd = SessionDescription.parse(load("baresip_answer.sdp"))
    assert "JTA7RlFc" in str(sd)
    assert "JTA7RlFc" not in repr(sd)
    assert "crypto" in repr(sd)


def test_direction_algebra() -> None:
    assert Direction.SENDONLY.reversed() is Direction.RECVONLY
    assert Direction.RECVONLY.reversed() is Direction.SENDONLY
    assert Direction.SENDRECV.reversed() is Direction.SENDRECV
    assert Direction.INACTIVE.reversed() is Direction.INACTIVE
    assert Direction.from_flags(send=True, receive=False) is Direction.SENDONLY
    assert Direction.SENDRECV.sends
    assert Direction.SENDRECV.receives
    assert not Direction.INACTIVE.sends
    assert not Direction.INACTIVE.receives


@given(st.text(max_size=300))
def test_any_text_parses_or_raises_sdp_error(text: str) -> None:
    with contextlib.suppress(SdpError):
        SessionDescription.parse(text)


_sdp_lines = st.lists(
    st.tuples(
        st.sampled_from("vosiuecbtrzkam"),
        st.text(alphabet=st.sampled_from(" 0123456789abcIPN4/:=-.\t\r"), max_size=30),
    ).map(lambda kv: f"{kv[0]}={kv[1]}"),
    max_size=12,
)


@given(_sdp_lines, st.sampled_from(["\r\n", "\n"]), st.sampled_from(["", "\r\n", " \r\n"]))
def test_sdp_like_text_parses_or_raises_and_reparses_stably(lines: list[str], eol: str, tail: str) -> None:
    text = eol.join([*MINIMAL.rstrip().split("\r\n"), *lines]) + tail
    try:
        sd = SessionDescription.parse(text)
    except SdpError:
        return
    assert SessionDescription.parse(str(sd)) == sd
    assert str(SessionDescription.parse(str(sd))) == str(sd)
