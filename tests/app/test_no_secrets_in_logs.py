"""A full started -> attendee events -> sweep -> ended flow never writes a join token anywhere."""

from __future__ import annotations

import logging

import pytest
from chalice.test import Client

from chalicelib import observability as obs
from chalicelib.contract import DialRequest
from chalicelib.events import ATTENDEE_JOINED, ATTENDEE_LEFT, MEETING_ENDED, MEETING_STARTED
from tests.app.conftest import Harness, meeting_event


def test_join_token_never_logged(
    client: Client,
    harness: Harness,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record) + repr(record.__dict__))

    collector = Collect()
    obs.logger.addHandler(collector)  # Powertools Logger forwards to its logging.Logger
    try:
        meeting_id = harness.create_meeting()
        ms = int(harness.clock.now * 1000)
        client.lambda_.invoke("on_meeting_started", meeting_event(MEETING_STARTED, meeting_id, ms))
        client.lambda_.invoke("on_meeting_started", meeting_event(MEETING_STARTED, meeting_id, ms))
        (message,) = harness.aws.receive_all()
        job = DialRequest.from_json(message["Body"])
        token = job.join_token.get_secret_value()
        human = "11111111-2222-3333-4444-555555555555"
        for event_type, offset in ((ATTENDEE_JOINED, 1), (ATTENDEE_LEFT, 2)):
            client.lambda_.invoke(
                "on_attendee_event", meeting_event(event_type, meeting_id, ms + offset, attendee_id=human)
            )
        client.lambda_.invoke(
            "on_attendee_event",
            meeting_event(
                ATTENDEE_JOINED,
                meeting_id,
                ms + 3,
                attendee_id=job.attendee_id,
                external_user_id=f"dialout#vc1#{meeting_id[:8]}",
            ),
        )
        harness.clock.advance(600)
        client.lambda_.invoke(
            "sweep_calls", client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])
        )
        client.lambda_.invoke("on_meeting_ended", meeting_event(MEETING_ENDED, meeting_id, ms + 9))
    finally:
        logging.getLogger(obs.logger.name).removeHandler(collector)
    captured = capfd.readouterr()
    assert len(token) >= 2
    assert "dial job enqueued" in captured.out + "".join(lines)  # the flow did log the job (redacted)
    for text in (captured.out, captured.err, caplog.text, "".join(lines)):
        assert token not in text
