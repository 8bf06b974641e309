"""Controlling the meetings emulator from outside: the ``/_emulator/`` HTTP controls and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator import ENDPOINT_ENV_VAR, MeetingsEmulator

pytestmark = pytest.mark.loopback

MakeMeeting = Callable[..., str]  # fixture signatures, see conftest.py
RawHttp = Callable[..., tuple[int, dict[str, str], bytes]]
REPO_ROOT = Path(__file__).resolve().parents[2]


def test_http_controls_inject_faults_report_state_and_reset(
    chime: Any, emulator: MeetingsEmulator, make_meeting: MakeMeeting, raw_http: RawHttp
) -> None:
    meeting_id = make_meeting()
    token = chime.create_attendee(MeetingId=meeting_id, ExternalUserId="dialout#x")["Attendee"]["JoinToken"]
    fault = {"operation": "GetMeeting", "error": "ThrottlingException", "times": 1}
    assert raw_http("POST", "/_emulator/faults", body=json.dumps(fault).encode(), signed=False)[0] == 200
    with pytest.raises(chime.exceptions.ThrottlingException):
        chime.get_meeting(MeetingId=meeting_id)

    status, _, payload = raw_http("GET", "/_emulator/state", signed=False)
    state = json.loads(payload)
    assert status == 200
    assert state["RequestCounts"] == {"CreateAttendee": 1, "CreateMeeting": 1, "GetMeeting": 1}
    assert [meeting["MeetingId"] for meeting in state["Meetings"]] == [meeting_id]
    assert token not in payload.decode()

    assert raw_http("POST", "/_emulator/reset", signed=False)[0] == 204
    assert emulator.request_count("GetMeeting") == 0
    assert emulator.is_token_valid(token) is None


def test_http_controls_clear_faults(chime: Any, emulator: MeetingsEmulator, raw_http: RawHttp) -> None:
    emulator.faults.inject("CreateMeeting", "ServiceFailureException", times=5)
    assert raw_http("DELETE", "/_emulator/faults", signed=False)[0] == 204
    assert emulator.faults.pending() == {}


@pytest.mark.parametrize(
    "fault",
    [
        {"operation": "CreateAttendee", "error": "NoSuchError"},
        {"operation": "NoSuchOperation", "error": "ThrottlingException"},
        {"operation": "CreateAttendee", "error": "ThrottlingException", "times": 0},
    ],
)
def test_http_controls_refuse_bad_faults(raw_http: RawHttp, fault: dict[str, Any]) -> None:
    status, _, payload = raw_http("POST", "/_emulator/faults", body=json.dumps(fault).encode())
    assert status == 400
    assert json.loads(payload)["message"]


def test_http_controls_simulate_clients(
    chime: Any, emulator: MeetingsEmulator, make_meeting: MakeMeeting, raw_http: RawHttp
) -> None:
    events: list[tuple[str, str | None]] = []
    emulator.add_listener(lambda event_type, detail: events.append((event_type, detail.get("networkType"))))
    meeting_id = make_meeting()
    attendee_id = chime.create_attendee(MeetingId=meeting_id, ExternalUserId="human")["Attendee"][
        "AttendeeId"
    ]

    for action in ("join", "drop", "join", "leave", "end-meeting"):
        request = {
            "action": action,
            "meetingId": meeting_id,
            "attendeeId": attendee_id,
            "networkType": "PSTN",
        }
        assert raw_http("POST", "/_emulator/clients", body=json.dumps(request).encode())[0] == 204

    assert events == [
        ("chime:MeetingStarted", None),
        ("chime:AttendeeAdded", None),
        ("chime:AttendeeJoined", "PSTN"),
        ("chime:AttendeeDropped", "PSTN"),
        ("chime:AttendeeJoined", "PSTN"),
        ("chime:AttendeeLeft", "PSTN"),
        ("chime:MeetingEnded", None),
    ]


def test_http_controls_report_unknown_attendees_as_api_errors(
    make_meeting: MakeMeeting, raw_http: RawHttp
) -> None:
    request = {
        "action": "join",
        "meetingId": make_meeting(),
        "attendeeId": "00000000-0000-4000-8000-000000000000",
    }
    status, headers, _ = raw_http("POST", "/_emulator/clients", body=json.dumps(request).encode())
    assert (status, headers["x-amzn-ErrorType"]) == (404, "NotFoundException")


def test_unknown_control_is_404(raw_http: RawHttp) -> None:
    assert raw_http("GET", "/_emulator/nothing-here")[0] == 404


def test_command_line_serves_the_meetings_api(monkeypatch: pytest.MonkeyPatch) -> None:
    command = [sys.executable, "-m", "emulator", "meetings", "--host", "127.0.0.1", "--port", "0"]
    with subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            monkeypatch.setenv(ENDPOINT_ENV_VAR, url)
            plain = boto3.client("chime-sdk-meetings", region_name="us-east-1")
            created = plain.create_meeting(
                ClientRequestToken="cli", MediaRegion="us-east-1", ExternalMeetingId="m1"
            )
            meeting_id = created["Meeting"]["MeetingId"]
            assert plain.get_meeting(MeetingId=meeting_id)["Meeting"]["MeetingId"] == meeting_id
        finally:
            process.terminate()
            _, stderr = process.communicate()
    assert process.returncode == 0, stderr
    assert ENDPOINT_ENV_VAR in stderr


def test_command_line_requires_a_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emulator"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "meetings" in result.stderr


def test_token_check_control_answers_for_issued_tokens_only(emulator: MeetingsEmulator, chime: Any) -> None:
    # GIVEN an attendee with a join token
    meeting = chime.create_meeting(
        ClientRequestToken="tok-check", MediaRegion="us-east-1", ExternalMeetingId="m-1"
    )
    meeting_id = meeting["Meeting"]["MeetingId"]
    attendee = chime.create_attendee(MeetingId=meeting_id, ExternalUserId="user-1")["Attendee"]

    def check(token: str) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(  # noqa: S310 - loopback URL built by the test
            f"{emulator.url}/_emulator/tokens/check",
            data=json.dumps({"JoinToken": token}).encode(),
            method="POST",
        )
        try:
            with urllib.request.urlopen(request) as reply:  # noqa: S310 - loopback URL built by the test
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, {}

    # WHEN its token and a made-up one are checked THEN only the issued one names its meeting and attendee
    assert check(attendee["JoinToken"]) == (
        200,
        {"MeetingId": meeting_id, "AttendeeId": attendee["AttendeeId"]},
    )
    assert check("not-a-token")[0] == 404
