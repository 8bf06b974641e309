"""Local stand-ins for what a development machine cannot reach: the Chime SDK Meetings API (and, later,
the Voice Connector), so the whole pipeline runs end to end without AWS.

``python -m emulator --help`` lists the command-line entry points.
"""

from emulator.faults import Fault, FaultInjector
from emulator.meetings_api import ENDPOINT_ENV_VAR, MeetingsEmulator
from emulator.meetings_events import MeetingEventListener, to_eventbridge
from emulator.meetings_store import MeetingsStore
from emulator.meetings_validation import MeetingsApiError

__all__ = [
    "ENDPOINT_ENV_VAR",
    "Fault",
    "FaultInjector",
    "MeetingEventListener",
    "MeetingsApiError",
    "MeetingsEmulator",
    "MeetingsStore",
    "to_eventbridge",
]
