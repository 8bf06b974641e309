"""``python -m emulator demo``: every step holds, exactly one job, and the join token is never printed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from emulator.demo import run_demo
from emulator.meetings_store import MeetingsStore
from emulator.meetings_validation import MeetingsApiError

ROOT = Path(__file__).resolve().parent.parent.parent


class RecordingStore(MeetingsStore):
    """Remembers every join token it hands out, so the test can look for them in the output."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[str] = []

    def create_attendee(self, meeting_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
        reply = super().create_attendee(meeting_id, request)
        self.tokens.append(reply["Attendee"]["JoinToken"])
        return reply


class GoneMeetingStore(MeetingsStore):
    """CreateAttendee always answers NotFound, as for a meeting that ended meanwhile."""

    def create_attendee(self, meeting_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
        raise MeetingsApiError("NotFoundException", "The meeting has ended.")


def _assert_no_token(store: RecordingStore, *outputs: str) -> None:
    assert len(store.tokens) == 1
    (token,) = store.tokens
    for output in outputs:
        assert token not in output


def test_narrative_holds_every_check_and_never_prints_the_token(capfd: pytest.CaptureFixture[str]) -> None:
    store = RecordingStore()
    status = run_demo(sys.stdout, show_logs=True, err=sys.stderr, store=store)
    out, err = capfd.readouterr()
    assert status == 0
    assert "All checks held." in out
    assert "FAILED" not in out
    assert '"join_token": "***"' in out
    assert '"correlation_id"' in err  # the handlers' own logs were echoed, so they were checked too
    _assert_no_token(store, out, err)


def test_json_summary_reports_exactly_one_job_and_the_hangup(capfd: pytest.CaptureFixture[str]) -> None:
    store = RecordingStore()
    status = run_demo(sys.stdout, as_json=True, err=sys.stderr, store=store)
    out, err = capfd.readouterr()
    assert status == 0
    summary = json.loads(out)
    assert summary["ok"] is True
    assert (summary["jobs_enqueued"], summary["jobs_after_duplicate"]) == (1, 1)
    assert summary["create_attendee_requests"] == 1
    assert summary["delete_attendee_requests"] == 1
    assert summary["call_after_end"] == {"state": "ended", "desired": "ended", "reason": "meeting_ended"}
    assert summary["job"]["join_token"] == "***"
    assert summary["job"]["target"]["host"] == "vc.localtest"
    assert all(check["ok"] for check in summary["checks"])
    assert {c["name"] for c in summary["checks"]} >= {
        "exactly_one",
        "attendee_deleted",
        "token_never_printed",
    }
    _assert_no_token(store, out, err)


def test_a_failed_expectation_exits_non_zero_with_a_reason(capfd: pytest.CaptureFixture[str]) -> None:
    status = run_demo(sys.stdout, as_json=True, err=sys.stderr, store=GoneMeetingStore())
    out, err = capfd.readouterr()
    assert status == 1
    summary = json.loads(out)
    assert summary["ok"] is False
    assert "one_job" in err
    assert "demo failed" in err


def test_command_line_demo_exits_zero_with_json() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "emulator", "demo", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] is True
    assert summary["jobs_after_duplicate"] == 1
