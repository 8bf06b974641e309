from __future__ import annotations

import pytest

from media_worker.rtp import DtmfDetector, MediaClock, RtpParseError, TelephoneEvent, dtmf_events


def test_media_clock_ticks_on_an_absolute_schedule() -> None:
    clock = MediaClock(0.020, start=10.0)
    assert clock.next_deadline() == 10.0
    assert clock.due(9.999) == 0
    assert clock.due(10.0) == 1
    assert clock.due(10.0) == 0
    assert clock.next_deadline() == pytest.approx(10.02)
    assert clock.due(10.045) == 2  # ticks due at 10.02 and 10.04
    assert clock.next_deadline() == pytest.approx(10.06)


def test_media_clock_skips_rather_than_bursting_when_badly_late() -> None:
    clock = MediaClock(0.020, start=0.0, max_catch_up=3)
    clock.due(0.0)
    assert clock.due(0.5) == 3  # 25 ticks (0.02 ... 0.50) were due; 22 are skipped
    assert clock.skipped_ticks == 22
    assert clock.next_deadline() == pytest.approx(0.52)
    assert clock.ticks == 26


def test_media_clock_does_not_drift() -> None:
    clock = MediaClock(0.020, start=5.0, max_catch_up=1)
    handed_out = 0
    for _ in range(100_000):
        handed_out += clock.due(clock.next_deadline())
    assert handed_out == 100_000
    assert clock.next_deadline() == 5.0 + 100_000 * 0.020  # computed, never accumulated


def test_media_clock_exact_boundaries_despite_float_rounding() -> None:
    clock = MediaClock(0.02, start=0.0, max_catch_up=10)
    assert clock.due(0.06) == 4  # 0.06 / 0.02 rounds to 2.999..., but tick 3 is due at exactly 0.06


def test_media_clock_validates_arguments() -> None:
    with pytest.raises(ValueError, match="ptime"):
        MediaClock(0, start=0.0)
    with pytest.raises(ValueError, match="max_catch_up"):
        MediaClock(0.02, start=0.0, max_catch_up=0)


def test_dtmf_event_sequence() -> None:
    events = dtmf_events("5", duration=800, interval=160, volume=10)
    assert [(e.duration, e.end) for e in events] == [
        (160, False), (320, False), (480, False), (640, False), (800, True), (800, True), (800, True),
    ]  # fmt: skip
    assert all(e.event == 5 and e.volume == 10 for e in events)
    assert bytes(events[0]) == bytes.fromhex("050a00a0")
    assert bytes(events[-1]) == bytes.fromhex("058a0320")


@pytest.mark.parametrize(("digit", "code"), [("0", 0), ("9", 9), ("*", 10), ("#", 11), ("A", 12), ("d", 15)])
def test_dtmf_digit_codes(digit: str, code: int) -> None:
    assert dtmf_events(digit, duration=160)[0].event == code


def test_dtmf_short_digit_is_three_end_packets() -> None:
    assert [e.end for e in dtmf_events("1", duration=100)] == [True, True, True]


@pytest.mark.parametrize("kwargs", [{"digit": "x"}, {"digit": "12"}, {"duration": 0}, {"duration": 70000}])
def test_dtmf_rejects_bad_arguments(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"digit": "1", "duration": 800} | kwargs
    with pytest.raises(ValueError, match="DTMF"):
        dtmf_events(args["digit"], duration=args["duration"])  # type: ignore[arg-type]  # parametrised


def test_telephone_event_parse() -> None:
    event = TelephoneEvent.parse(bytes.fromhex("0b8a0320"))
    assert event == TelephoneEvent(event=11, end=True, volume=10, duration=800)
    assert event.digit == "#"
    assert TelephoneEvent(event=16, end=False, volume=0, duration=0).digit is None  # flash, not DTMF
    with pytest.raises(RtpParseError):
        TelephoneEvent.parse(b"\x01\x02")


def test_detector_reports_each_event_once() -> None:
    detector = DtmfDetector()
    reported = [detector.feed(1000, e) for e in dtmf_events("7", duration=480)]
    assert [r.digit for r in reported if r is not None] == ["7"]
    again = [detector.feed(2000, e) for e in dtmf_events("7", duration=480)]
    assert [r.digit for r in again if r is not None] == ["7"]
