"""SipUri parsing/serialising (RFC 3261 §19.1, §25.1) and the Chime join URIs."""

from __future__ import annotations

import pytest

from media_worker.sip.exceptions import LocalProtocolError, ParseError
from media_worker.sip.uri import SipUri, chime_join_uri, chime_to_uri, escape_param_value, redact_uri

VC_HOST = "abcdef1ghij2klmno3pqr4.voiceconnector.chime.aws"
SEED_JOIN_URI = f"sip:17035550122@{VC_HOST};transport=tls;X-chime-join-token=join-token"
AWKWARD_TOKEN = "AbC+dEf/GhI=jKl==+/"  # base64-style: '+' and '/' stay literal, '=' must become %3D


def test_parse_full_uri() -> None:
    uri = SipUri.parse("sips:alice:s3cret@[2001:db8::1]:5061;transport=tls;lr;maddr=x?subject=hi%20there&x=")

    assert uri.scheme == "sips"
    assert uri.user == "alice"
    assert uri.password == "s3cret"
    assert uri.host == "[2001:db8::1]"
    assert uri.port == 5061
    assert uri.params == (("transport", "tls"), ("lr", None), ("maddr", "x"))
    assert uri.headers == (("subject", "hi there"), ("x", ""))
    assert "s3cret" not in repr(uri)


def test_scheme_is_lowercased_and_host_kept_as_written() -> None:
    uri = SipUri.parse("SIP:Bob@Example.COM")

    assert (uri.scheme, uri.user, uri.host, uri.port) == ("sip", "Bob", "Example.COM", None)
    assert str(uri) == "sip:Bob@Example.COM"


@pytest.mark.parametrize(
    "text",
    [
        "sip:example.com",
        "sip:alice@example.com:5060",
        "sips:alice@192.0.2.1;transport=tls",
        "sip:+12065550100@example.com;user=phone",
        "sip:[::1]:5061;lr",
        "sip:user;par=u%40example.net@example.com",
        "sip:a@b.example;x=%3D%3B?h=v%26w",
        "sip:%FF%FE@example.com",
    ],
)
def test_str_round_trips_canonical_text(text: str) -> None:
    assert str(SipUri.parse(text)) == text


def test_param_lookup_is_case_insensitive() -> None:
    uri = SipUri.parse("sip:a@b.example;Transport=TLS;lr")

    assert uri.param("transport") == "TLS"
    assert uri.param("LR") == ""
    assert uri.param("maddr") is None
    assert uri.has_param("lr")
    assert not uri.has_param("maddr")


def test_with_params_replaces_in_place_and_appends() -> None:
    uri = SipUri.parse("sip:a@b.example;transport=udp;lr")

    changed = uri.with_params(("Transport", "tls"), ("ob", None))

    assert changed.params == (("Transport", "tls"), ("lr", None), ("ob", None))
    assert uri.params == (("transport", "udp"), ("lr", None))  # original untouched
    assert changed.without_params("LR", "missing").params == (("Transport", "tls"), ("ob", None))


def test_escaping_of_user_params_and_headers() -> None:
    uri = SipUri(
        "sip", "sips:eve@example.org", "example.net", params=(("k", "a=b;c d"),), headers=(("h", "x&y"),)
    )

    assert str(uri) == "sip:sips%3Aeve%40example.org@example.net;k=a%3Db%3Bc%20d?h=x%26y"
    assert SipUri.parse(str(uri)) == uri


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip",
        "sip:",
        "http://example.com",
        "tel:+12065550100",
        "sip:@example.com",
        "sip:alice@",
        "sip:example.com:99999",
        "sip:example.com:port",
        "sip:example.com:",
        "sip:[::1",
        "sip:[not-v6]",
        "sip:exa mple.com",
        "sip:<example.com>",
        "sip:example.com;=x",
        "sip:example.com;a=",
        "sip:example.com;",
        "sip:example.com?x",
        "sip:example.com?=v",
        "sip:u%zz@example.com",
        "sip:u%4@example.com",
        "sip:-bad.example.com",
        "sip:a..b.example.com",
        "sip:bad_host.example.com",
        "sip:a@b@c.example.com",
        "sip:a\r\n@b.example.com",
        "sip:caf\u00e9@example.com",
    ],
)
def test_invalid_uris_raise_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        SipUri.parse(text)


def test_escape_param_value_keeps_paramchars() -> None:
    assert escape_param_value("+/=") == "+/%3D"
    assert escape_param_value("[]/:&+$-_.!~*'()az09") == "[]/:&+$-_.!~*'()az09"
    assert escape_param_value("a;b c%") == "a%3Bb%20c%25"


def test_chime_join_uri_matches_documented_form() -> None:
    uri = chime_join_uri(join_number="17035550122", host=VC_HOST, join_token="join-token")

    assert str(uri) == SEED_JOIN_URI
    assert SipUri.parse(SEED_JOIN_URI) == uri


def test_chime_join_uri_escapes_only_what_paramchar_requires() -> None:
    uri = chime_join_uri(join_number="17035550122", host=VC_HOST, join_token=AWKWARD_TOKEN)

    assert str(uri) == f"sip:17035550122@{VC_HOST};transport=tls;X-chime-join-token=AbC+dEf/GhI%3DjKl%3D%3D+/"
    parsed = SipUri.parse(str(uri))
    assert parsed == uri
    assert parsed.param("x-chime-join-token") == AWKWARD_TOKEN


def test_chime_join_uri_with_port() -> None:
    uri = chime_join_uri(join_number="17035550122", host="127.0.0.1", join_token="t", port=5061)

    assert str(uri) == "sip:17035550122@127.0.0.1:5061;transport=tls;X-chime-join-token=t"


def test_chime_to_uri_carries_token_and_optional_meeting_id() -> None:
    plain = chime_to_uri(join_number="17035550122", host=VC_HOST, join_token=AWKWARD_TOKEN)
    with_meeting = chime_to_uri(
        join_number="17035550122", host=VC_HOST, join_token=AWKWARD_TOKEN, meeting_id="5a3c-11ee", port=5061
    )

    assert str(plain) == f"sip:17035550122@{VC_HOST};X-chime-join-token=AbC+dEf/GhI%3DjKl%3D%3D+/"
    assert str(with_meeting) == (
        f"sip:17035550122@{VC_HOST}:5061;X-chime-join-token=AbC+dEf/GhI%3DjKl%3D%3D+/;X-chime-meeting-id=5a3c-11ee"
    )
    for uri in (plain, with_meeting):
        assert SipUri.parse(str(uri)) == uri
    assert SipUri.parse(str(with_meeting)).param("X-CHIME-MEETING-ID") == "5a3c-11ee"


@pytest.mark.parametrize(
    ("number", "host", "token"),
    [
        ("", VC_HOST, AWKWARD_TOKEN),
        ("1703 555", VC_HOST, AWKWARD_TOKEN),
        ("17035550122", "bad host", AWKWARD_TOKEN),
    ],
)
def test_chime_uri_rejects_bad_arguments_without_leaking_token(number: str, host: str, token: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        chime_join_uri(join_number=number, host=host, join_token=token)

    assert AWKWARD_TOKEN not in str(info.value)
    assert info.value.status_hint == 500


def test_chime_uri_rejects_empty_token() -> None:
    with pytest.raises(LocalProtocolError):
        chime_to_uri(join_number="17035550122", host=VC_HOST, join_token="")


def test_repr_hides_join_token_in_any_case() -> None:
    for name in ("X-chime-join-token", "x-CHIME-join-TOKEN"):
        uri = SipUri("sip", "17035550122", VC_HOST, params=((name, AWKWARD_TOKEN), ("transport", "tls")))

        assert AWKWARD_TOKEN not in repr(uri)
        assert "***" in repr(uri)
        assert "tls" in repr(uri)


def test_redact_uri() -> None:
    text = f"To: <sip:1@h;X-Chime-Join-Token={AWKWARD_TOKEN};x=1>;x-chime-join-token = tok2, <sip:2@h>"

    redacted = redact_uri(text)

    assert redacted == "To: <sip:1@h;X-Chime-Join-Token=***;x=1>;x-chime-join-token = ***, <sip:2@h>"


def test_parse_error_message_does_not_leak_token() -> None:
    with pytest.raises(ParseError) as info:
        SipUri.parse(f"sip:17035550122@bad host;X-chime-join-token={AWKWARD_TOKEN}")

    assert AWKWARD_TOKEN not in str(info.value)


def test_chime_join_uri_accepts_e164_join_number() -> None:
    uri = chime_join_uri(join_number="+17035550122", host=VC_HOST, join_token="join-token")

    assert str(uri) == f"sip:+17035550122@{VC_HOST};transport=tls;X-chime-join-token=join-token"
    assert SipUri.parse(str(uri)).user == "+17035550122"


def test_raw_equals_in_received_param_value_is_tolerated_and_written_escaped() -> None:
    uri = SipUri.parse(f"sip:+17035550122@{VC_HOST};X-chime-join-token=abc+/de==")

    assert uri.param("X-chime-join-token") == "abc+/de=="
    assert str(uri) == f"sip:+17035550122@{VC_HOST};X-chime-join-token=abc+/de%3D%3D"
