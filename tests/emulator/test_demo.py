"""``python -m emulator demo``: the whole scenario, exactly as ``make demo`` runs it, holds every expectation.

One run of the command (a subprocess, ``--json --out <tmp>``) is shared by the tests below: it starts moto,
both emulators and the worker on 127.0.0.1, plays the scenario and writes its output folder.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytestmark = pytest.mark.loopback

ROOT = Path(__file__).resolve().parent.parent.parent
# The emulator's join tokens: base64, 60..200 characters, always with '+' and '/'.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9+/]{60,}={0,2}")
EXPECTED_CHECKS = {
    "rules_are_the_apps",
    "resources_from_template",
    "participant_joined",
    "unmatched_meeting_skipped",
    "duplicate_changes_nothing",
    "audio_both_ways",
    "meeting_ended_bye",
    "attendee_deleted",
    "humans_gone_hangup",
    "drain_call_connected",
    "worker_drained",
    "outputs_written",
    "token_never_printed",
}


@dataclass(frozen=True)
class DemoRun:
    returncode: int
    stdout: str
    stderr: str
    out_dir: Path

    @property
    def summary(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.stdout)
        return parsed


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    out_dir = tmp_path_factory.mktemp("demo-output")
    done = subprocess.run(
        [sys.executable, "-m", "emulator", "demo", "--json", "--out", str(out_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return DemoRun(done.returncode, done.stdout, done.stderr, out_dir)


def _looks_like_a_token(text: str) -> list[str]:
    return [m for m in TOKEN_SHAPE.findall(text) if "+" in m and "/" in m]


def test_exits_zero_with_every_expectation_held(demo: DemoRun) -> None:
    assert demo.returncode == 0, demo.stderr[-4000:]
    summary = demo.summary
    assert summary["ok"] is True
    failed = [c for c in summary["checks"] if not c["ok"]]
    assert failed == []
    assert {c["name"] for c in summary["checks"]} >= EXPECTED_CHECKS


def test_summary_describes_each_call(demo: DemoRun) -> None:
    calls = {entry["label"]: entry["call"] for entry in demo.summary["calls"]}
    assert calls["internal-standup"] is None
    ended = {label: call["hangup_reason"] for label, call in calls.items() if call is not None}
    assert ended == {
        "sales-q3-review": "meeting_ended",
        "support-4711": "humans_gone",
        "sales-late-call": None,
    }
    assert calls["sales-late-call"]["end_reason"] == "drained"
    for call in (c for c in calls.values() if c is not None):
        assert call["codec"] in ("PCMU", "PCMA")
        assert call["srtp_suite"].startswith("AES")
        assert set(call["timeline_s"]) >= {"event", "attendee", "job", "invite", "answered", "first_media"}
        assert call["worker_media"]["packets_received"] > 0
        assert call["worker_media"]["mos"] is not None


def test_png_timeline_and_recordings_are_written(demo: DemoRun) -> None:
    png = demo.out_dir / "timeline.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as image:
        image.verify()
    recordings = sorted((demo.out_dir / "recordings").glob("*.wav"))
    assert len(recordings) == 3
    for path in recordings:
        with wave.open(str(path), "rb") as recording:
            assert (recording.getframerate(), recording.getsampwidth()) == (8000, 2)
            assert recording.getnframes() > 0
    assert json.loads((demo.out_dir / "summary.json").read_text(encoding="utf-8"))["ok"] is True


def test_no_join_token_in_any_output(demo: DemoRun) -> None:
    token_check = next(c for c in demo.summary["checks"] if c["name"] == "token_never_printed")
    assert token_check["ok"] is True
    texts = [demo.stdout, demo.stderr]
    texts += [p.read_text(encoding="utf-8") for p in demo.out_dir.rglob("*.json")]
    for text in texts:
        assert _looks_like_a_token(text) == []
