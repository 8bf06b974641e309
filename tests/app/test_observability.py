"""Metrics are EMF on stdout with the agreed names and dimensions; logs are JSON and never carry tokens."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from chalicelib import observability
from chalicelib.contract import DialRequest, DialTarget
from chalicelib.observability import (
    ATTENDEES_CREATED,
    EVENTS_REJECTED,
    KNOWN_METRICS,
    count,
    flush,
    get_metrics,
    log_dial_request,
    log_rejection,
    logger,
    safe_keys,
    start_invocation,
)

JOIN_TOKEN = "dG9wLXNlY3JldC1qb2luLXRva2Vu+/AA"


@pytest.fixture(autouse=True)
def fresh_metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ChimeDialoutTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "control-plane")
    get_metrics().clear_metrics()
    yield
    get_metrics().clear_metrics()


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = cast(logging.StreamHandler[Any], logger.registered_handler)
    previous = handler.setStream(stream)
    start_invocation()
    try:
        yield stream
    finally:
        handler.setStream(previous)
        start_invocation()


def _emf_blobs(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def _log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def _dial_request() -> DialRequest:
    return DialRequest(
        call_id="87654321-4321-4321-1234-111122223333:vc1",
        meeting_id="87654321-4321-4321-1234-111122223333",
        media_region="us-east-1",
        attendee_id="a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        join_token=JOIN_TOKEN,
        target=DialTarget(name="vc1", host="vc.example", from_number="+12065550100"),
        requested_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        event_id="6f8d3c2e-1111-2222-3333-444455556601",
    )


def test_count_and_flush_print_one_emf_blob(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN two counts without dimensions
    count(ATTENDEES_CREATED)
    count("JobsEnqueued", 2)
    # WHEN the handler flushes
    flush()
    # THEN one EMF blob with namespace from the environment and only the service dimension
    (blob,) = _emf_blobs(capsys.readouterr().out)
    directive = blob["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "ChimeDialoutTest"
    assert directive["Dimensions"] == [["service"]]
    assert {m["Name"] for m in directive["Metrics"]} == {"AttendeesCreated", "JobsEnqueued"}
    assert blob["service"] == "control-plane"
    assert blob["AttendeesCreated"] == [1.0]
    assert blob["JobsEnqueued"] == [2.0]


def test_dimensioned_count_emits_breakdown_and_total(capsys: pytest.CaptureFixture[str]) -> None:
    count("CreateAttendeeErrors", code="ThrottlingException")
    breakdown_text = capsys.readouterr().out
    flush()
    total_text = capsys.readouterr().out
    (breakdown,) = _emf_blobs(breakdown_text)
    assert breakdown["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "code"]]
    assert breakdown["code"] == "ThrottlingException"
    assert breakdown["CreateAttendeeErrors"] == [1.0]
    (total,) = _emf_blobs(total_text)
    assert total["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert "code" not in total


def test_flush_with_nothing_counted_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    flush()
    assert capsys.readouterr().out == ""


def test_flush_clears_the_set(capsys: pytest.CaptureFixture[str]) -> None:
    count("SweeperRuns")
    flush()
    flush()
    assert len(_emf_blobs(capsys.readouterr().out)) == 1


def test_default_namespace_when_unset(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE")
    count("Redials")
    flush()
    (blob,) = _emf_blobs(capsys.readouterr().out)
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == observability.DEFAULT_NAMESPACE


def test_unknown_metric_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        count("EventsRecieved")


def test_bad_dimension_values_are_refused() -> None:
    with pytest.raises(ValueError, match="dimension"):
        count("CallsFailed", reason="")


def test_agreed_metric_names() -> None:
    assert {
        "EventsReceived",
        "EventsRejected",
        "AttendeesCreated",
        "CreateAttendeeErrors",
        "JobsEnqueued",
        "MeetingsSkipped",
        "HangupsRequested",
        "Redials",
        "CallsFailed",
        "SweeperRuns",
    } == KNOWN_METRICS


def test_log_rejection_logs_and_counts(log_stream: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN an invocation tagged with its event id
    start_invocation(
        "6f8d3c2e-1111-2222-3333-444455556601", meeting_id="87654321-4321-4321-1234-111122223333"
    )
    # WHEN an event is rejected
    log_rejection("bad_id", "detail.meetingId: String should match pattern")
    # THEN a warning with reason and correlation id is logged and EventsRejected counted by reason
    (line,) = _log_lines(log_stream)
    assert line["level"] == "WARNING"
    assert line["reason"] == "bad_id"
    assert line["correlation_id"] == "6f8d3c2e-1111-2222-3333-444455556601"
    assert line["meeting_id"] == "87654321-4321-4321-1234-111122223333"
    (breakdown,) = _emf_blobs(capsys.readouterr().out)
    assert breakdown["reason"] == "bad_id"
    flush()
    (total,) = _emf_blobs(capsys.readouterr().out)
    assert total[EVENTS_REJECTED] == [1.0]


def test_dial_request_logged_without_token(log_stream: io.StringIO) -> None:
    log_dial_request("job enqueued", _dial_request(), join_token=JOIN_TOKEN)
    text = log_stream.getvalue()
    assert JOIN_TOKEN not in text
    (line,) = _log_lines(log_stream)
    assert line["job"]["join_token"] == "***"
    assert line["job"]["call_id"] == "87654321-4321-4321-1234-111122223333:vc1"


def test_start_invocation_masks_sensitive_keys_and_resets_state(log_stream: io.StringIO) -> None:
    start_invocation("first", external_user_id="alice@example.com", meeting_id="m-1")
    logger.info("one")
    start_invocation("second")
    logger.info("two")
    first, second = _log_lines(log_stream)
    assert first["external_user_id"] == "***"
    assert "alice@example.com" not in log_stream.getvalue()
    assert second["correlation_id"] == "second"
    assert "meeting_id" not in second


def test_safe_keys() -> None:
    assert safe_keys({"join_token": "t", "externalMeetingId": "e", "call_id": "c"}) == {
        "join_token": "***",
        "externalMeetingId": "***",
        "call_id": "c",
    }


def test_tracer_is_a_no_op_outside_lambda() -> None:
    @observability.tracer.capture_method
    def traced(x: int) -> int:
        return x + 1

    assert traced(1) == 2
