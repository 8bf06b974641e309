"""RFC 4028 session timers: header values, negotiation on both sides, refresh and expiry deadlines."""

from __future__ import annotations

import pytest

from media_worker.sip import Headers, ParseError
from media_worker.sip.session_timer import (
    SessionDecision,
    SessionExpires,
    SessionTimer,
    TooSmall,
    negotiate_as_uas,
    parse_min_se,
    request_headers,
    response_headers,
    uac_outcome,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1800", SessionExpires(1800)),
        ("1800;refresher=uac", SessionExpires(1800, "uac")),
        ("90 ; refresher=UAS", SessionExpires(90, "uas")),
        ("600;foo=bar;refresher=uas", SessionExpires(600, "uas")),
    ],
)
def test_session_expires_parses(text: str, expected: SessionExpires) -> None:
    assert SessionExpires.parse(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "-5", "1800;refresher=both", "99999999999"])
def test_bad_session_expires_is_a_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        SessionExpires.parse(text)


def test_round_trips_and_min_se() -> None:
    assert str(SessionExpires(1800, "uac")) == "1800;refresher=uac"
    assert str(SessionExpires(1800)) == "1800"
    assert parse_min_se("90") == 90
    assert parse_min_se(" 120;x=y") == 120
    assert request_headers(interval=1800, min_se=90, refresher=None) == [
        ("Session-Expires", "1800"),
        ("Min-SE", "90"),
    ]


def _request(*items: tuple[str, str]) -> Headers:
    return Headers(items)


def test_uas_negotiation() -> None:
    timer = ("Supported", "replaces, 100rel, timer")
    assert negotiate_as_uas(_request(timer), min_se=90) is None
    assert negotiate_as_uas(_request(timer, ("Session-Expires", "60")), min_se=90) == TooSmall(90)
    assert negotiate_as_uas(_request(timer, ("Session-Expires", "1800")), min_se=90) == SessionDecision(
        1800, "uac", True
    )
    assert negotiate_as_uas(_request(timer, ("Session-Expires", "1800;refresher=uas")), min_se=90) == (
        SessionDecision(1800, "uas", True)
    )
    # A UAC without the extension cannot refresh: the UAS does, and does not Require: timer (RFC 4028 §9).
    assert negotiate_as_uas(_request(("Session-Expires", "1800;refresher=uac")), min_se=90) == (
        SessionDecision(1800, "uas", False)
    )
    assert response_headers(SessionDecision(1800, "uac", True)) == [
        ("Require", "timer"),
        ("Session-Expires", "1800;refresher=uac"),
    ]


def test_uac_outcome_defaults_to_uac_refreshing() -> None:
    assert uac_outcome(Headers()) is None
    assert uac_outcome(Headers([("Session-Expires", "1200")])) == SessionExpires(1200, "uac")
    assert uac_outcome(Headers([("Session-Expires", "1200;refresher=uas")])) == SessionExpires(1200, "uas")


@pytest.mark.parametrize(("interval", "expiry"), [(1800, 1800 - 32), (90, 60), (96, 64), (3600, 3600 - 32)])
def test_deadlines(interval: int, expiry: float) -> None:
    refresher = SessionTimer(interval=interval, local_refresher=True, now=100.0, min_se=90)
    assert refresher.refresh_at == 100 + interval / 2
    assert refresher.deadline == 100 + interval / 2
    assert refresher.refresher == "uac"
    refresher.refresh_pending = True
    assert refresher.refresh_at is None
    assert refresher.deadline == 100 + expiry
    waiter = SessionTimer(interval=interval, local_refresher=False, now=100.0, min_se=90)
    assert waiter.refresh_at is None
    assert waiter.expires_at == 100 + expiry  # RFC 4028 §10
    assert waiter.refresher == "uas"
    waiter.refreshed(interval=interval, local_refresher=False, now=200.0)
    assert waiter.expires_at == 200 + expiry
