"""chime-dialout control plane: Chime meeting events and a one-minute sweep. The logic lives in chalicelib."""

from __future__ import annotations

import os

from chalice.app import Chalice, CloudWatchEvent

from chalicelib.control import (
    PlaneFactory,
    build_plane,
    handle_meeting_ended,
    handle_meeting_started,
    run_event,
)
from chalicelib.events import ATTENDEE_EVENTS_PATTERN, MEETING_ENDED_PATTERN, MEETING_STARTED_PATTERN
from chalicelib.presence import handle_attendee_event
from chalicelib.sweeper import run_sweep

app = Chalice(app_name="chime-dialout")

#: How handlers build their collaborators; read at call time, so tests can substitute fakes here.
plane_factory: PlaneFactory = build_plane


@app.on_cw_event(MEETING_STARTED_PATTERN)
def on_meeting_started(event: CloudWatchEvent) -> None:
    run_event(event.to_dict(), handle_meeting_started, plane_factory, os.environ)


@app.on_cw_event(MEETING_ENDED_PATTERN)
def on_meeting_ended(event: CloudWatchEvent) -> None:
    run_event(event.to_dict(), handle_meeting_ended, plane_factory, os.environ)


@app.on_cw_event(ATTENDEE_EVENTS_PATTERN)
def on_attendee_event(event: CloudWatchEvent) -> None:
    run_event(event.to_dict(), handle_attendee_event, plane_factory, os.environ)


@app.schedule("rate(1 minute)")
def sweep_calls(event: object) -> None:
    run_sweep(plane_factory, os.environ)
