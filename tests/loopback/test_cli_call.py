"""``python -m media_worker call`` against the emulator: the report names the outcome and never the token."""

from __future__ import annotations

import asyncio
import io
import json
import os

import pytest

from emulator.voice_connector import VoiceConnectorEmulator
from media_worker.cli_call import run_call_command

from .conftest import TOKEN, WAIT

pytestmark = pytest.mark.loopback


def call_emulator(*extra: str) -> tuple[int, str]:
    async def scenario() -> tuple[int, str]:
        async with VoiceConnectorEmulator(rtp_ports=(45000, 45999)) as emulator:
            assert emulator.ca_file is not None
            # The emulator's certificate also names 127.0.0.1, so the URI can use the address itself.
            uri = f"sip:+17035550122@127.0.0.1:{emulator.port};transport=tls;X-chime-join-token={TOKEN}"
            out = io.StringIO()
            argv = ["--uri", uri, "--from", "+12065550100", "--ca-file", str(emulator.ca_file), *extra]
            status = await asyncio.wait_for(run_call_command(argv, out=out), WAIT)
            return status, out.getvalue()

    os.environ.update({"MEDIA_BIND_IP": "127.0.0.1", "RTP_PORT_MIN": "46000", "RTP_PORT_MAX": "46999"})
    return asyncio.run(scenario())


def test_human_report() -> None:
    status, text = call_emulator("--duration", "0.5", "--media", "tone")
    assert status == 0
    assert "max_duration (SIP 200)" in text
    assert "AES_CM_128_HMAC_SHA1_80" in text
    assert "PCMU" in text
    assert "X-chime-join-token=***" in text
    assert TOKEN not in text
    assert "loop+back" not in text


def test_json_report() -> None:
    status, text = call_emulator("--duration", "0.5", "--json")
    report = json.loads(text)
    assert status == 0
    assert report["end_reason"] == "max_duration"
    assert report["sip_status"] == 200
    assert report["suite"] == "AES_CM_128_HMAC_SHA1_80"
    assert report["media"]["srtp_failures"] == 0
    assert report["media"]["packets_sent"] > 0
    assert "loop+back" not in text


def test_bad_from_number_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--uri", f"sip:+1@vc.localtest;X-chime-join-token={TOKEN}", "--from", "12065550100"]
    assert asyncio.run(run_call_command(argv)) == 2
    captured = capsys.readouterr()
    assert "E.164" in captured.err
    assert "loop+back" not in captured.err + captured.out
