"""Digest authentication: the RFC 2617 and RFC 7616 worked examples, challenge choice, retry rules."""

from __future__ import annotations

import pytest

from media_worker.sip import (
    DigestChallenge,
    DigestCredentials,
    DigestResponse,
    ParseError,
    digest_authorization,
    digest_challenge,
    verify_authorization,
)
from media_worker.sip.auth import ChallengeResponder, choose_challenge

MUFASA_2617 = DigestCredentials("Mufasa", "Circle Of Life")
MUFASA_7616 = DigestCredentials("Mufasa", "Circle of Life")


def test_rfc_2617_example() -> None:
    challenge = DigestChallenge.parse(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    value = digest_authorization(
        challenge, MUFASA_2617, method="GET", uri="/dir/index.html", cnonce="0a4f113b", nc=1
    )
    answer = DigestResponse.parse(value)
    assert answer.response == "6629fae49393a05397450978507c4ef1"
    assert (answer.qop, answer.nc, answer.cnonce) == ("auth", "00000001", "0a4f113b")
    assert answer.opaque == "5ccc069c403ebaf9f0171e9517f40e41"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_rfc_7616_examples(algorithm: str, expected: str) -> None:
    challenge = DigestChallenge(
        realm="http-auth@example.org",
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        algorithm=algorithm,
        qop=("auth", "auth-int"),
        opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
    )
    value = digest_authorization(
        challenge,
        MUFASA_7616,
        method="GET",
        uri="/dir/index.html",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        nc=1,
    )
    assert DigestResponse.parse(value).response == expected
    assert verify_authorization(
        value, method="GET", password="Circle of Life", realm="http-auth@example.org", nonce=challenge.nonce
    )
    assert not verify_authorization(
        value, method="GET", password="wrong", realm="http-auth@example.org", nonce=challenge.nonce
    )


def test_challenge_round_trip_and_errors() -> None:
    text = digest_challenge(realm="vc", nonce="abc", opaque="o")
    assert DigestChallenge.parse(text) == DigestChallenge("vc", "abc", "SHA-256", ("auth",), "o")
    with pytest.raises(ParseError):
        DigestChallenge.parse('Basic realm="x"')
    with pytest.raises(ParseError):
        DigestChallenge.parse('Digest realm="x"')
    assert not verify_authorization("garbage", method="INVITE", password="p", realm="vc", nonce="abc")


def test_choose_the_strongest_usable_challenge() -> None:
    offered = [
        'Digest realm="vc", nonce="m", algorithm=MD5, qop="auth"',
        'Digest realm="vc", nonce="s", algorithm=SHA-256, qop="auth"',
        'Digest realm="vc", nonce="x", algorithm=SHA-512-256, qop="auth"',
        'Newauth realm="vc"',
    ]
    chosen = choose_challenge(offered, DigestCredentials("u", "p"))
    assert chosen is not None
    assert chosen.nonce == "s"
    assert choose_challenge(offered[:1], DigestCredentials("u", "p", realm="elsewhere")) is None


def test_without_qop_uses_the_rfc_2069_form() -> None:
    challenge = DigestChallenge(realm="r", nonce="n")
    value = digest_authorization(
        challenge, DigestCredentials("u", "p"), method="INVITE", uri="sip:x", cnonce="c", nc=1
    )
    assert "qop" not in value
    assert "cnonce" not in value
    assert verify_authorization(value, method="INVITE", password="p", realm="r", nonce="n")


def test_responder_retries_once_unless_the_nonce_is_stale() -> None:
    responder = ChallengeResponder(DigestCredentials("u", "p"))
    assert responder.authorization(method="INVITE", uri="sip:x", cnonce="c") is None
    assert responder.accept(401, [digest_challenge(realm="r", nonce="n1")], already_retried=False)
    header = responder.authorization(method="INVITE", uri="sip:x", cnonce="c")
    assert header is not None
    assert header[0] == "Authorization"
    assert "nc=00000001" in header[1]
    assert not responder.accept(401, [digest_challenge(realm="r", nonce="n1")], already_retried=True)
    assert not responder.accept(401, [digest_challenge(realm="r", nonce="n2")], already_retried=True)
    stale = 'Digest realm="r", nonce="n3", algorithm=MD5, qop="auth", stale=true'
    assert responder.accept(407, [stale], already_retried=True)
    header = responder.authorization(method="INVITE", uri="sip:x", cnonce="c")
    assert header is not None
    assert header[0] == "Proxy-Authorization"
    assert not ChallengeResponder(None).accept(401, [stale], already_retried=False)


def test_passwords_stay_out_of_reprs() -> None:
    assert "Circle" not in repr(MUFASA_7616)
    value = digest_authorization(
        DigestChallenge("r", "n"), MUFASA_7616, method="INVITE", uri="sip:x", cnonce="c", nc=1
    )
    assert DigestResponse.parse(value).response not in repr(DigestResponse.parse(value))
