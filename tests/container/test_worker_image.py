"""The worker image: one call from inside the container to the Voice Connector emulator on the host.

The container shares the host's network (``--network host``), so the emulator listening on 127.0.0.1 in
this process is reachable from it; its CA file is mounted read-only. The join token is a real one, issued
by an in-process Meetings emulator for a real meeting and attendee.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from emulator import MeetingsEmulator
from emulator.vc_calls import CallState
from emulator.vc_thread import VoiceConnectorThread
from media_worker.sip import chime_join_uri

from .conftest import RUN

pytestmark = pytest.mark.container

RUN_TIMEOUT_S = 120.0
JOIN_NUMBER = "+17035550122"


def run_image(image: str, *args: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RUN, *options, image, *args], capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )


def test_one_call_from_the_container_to_the_voice_connector(worker_image: str, tmp_path: Path) -> None:
    meetings = MeetingsEmulator()
    meeting = meetings.store.create_meeting(
        {"ClientRequestToken": "image-test", "MediaRegion": "us-east-1", "ExternalMeetingId": "image-test"}
    )["Meeting"]["MeetingId"]
    attendee = meetings.store.create_attendee(meeting, {"ExternalUserId": "dialout-image"})["Attendee"]
    token = attendee["JoinToken"]
    with VoiceConnectorThread(meetings=meetings, rtp_ports=(48000, 48999)) as vc:
        # The container user (not root) must be able to read the mounted CA file.
        ca_file = tmp_path / "ca.pem"
        ca_file.write_bytes(vc.ca_file.read_bytes())
        ca_file.chmod(0o644)
        # The emulator's certificate names 127.0.0.1 too, so the URI can use the address.
        uri = str(chime_join_uri(join_number=JOIN_NUMBER, host="127.0.0.1", join_token=token, port=vc.port))
        completed = run_image(
            worker_image,
            "call",
            "--uri",
            uri,
            "--from",
            "+12065550100",
            "--ca-file",
            "/ca.pem",
            "--duration",
            "2",
            "--media",
            "tone",
            "--json",
            options=(
                "--volume",
                f"{ca_file}:/ca.pem:ro",
                "--env",
                "MEDIA_BIND_IP=127.0.0.1",
                "--env",
                "RTP_PORT_MIN=47000",
                "--env",
                "RTP_PORT_MAX=47999",
            ),
        )
        record = vc.wait_for_call(state=CallState.ENDED)

    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    summary = json.loads(completed.stdout)
    assert summary["connected"] is True
    assert summary["end_reason"] == "max_duration"
    assert summary["sip_status"] == 200
    assert summary["codec"] == "PCMU"
    assert summary["suite"] == "AES_CM_128_HMAC_SHA1_80"
    assert summary["media"]["packets_received"] > 0
    assert summary["media"]["packets_sent"] > 0
    assert summary["media"]["srtp_failures"] == 0
    assert "X-chime-join-token=***" in summary["target"]
    assert token not in output
    assert record["ended_by"] == "caller"


def test_image_runs_as_a_non_root_user(worker_image: str) -> None:
    completed = run_image(worker_image, "-u", options=("--entrypoint", "id"))
    assert completed.returncode == 0, completed.stderr
    assert int(completed.stdout.strip()) != 0


def test_service_without_its_queue_refuses_to_start(worker_image: str) -> None:
    completed = run_image(worker_image)
    assert completed.returncode != 0
    assert "DIAL_QUEUE_URL" in completed.stderr
