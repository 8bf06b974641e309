"""A whole call, hold/resume included, logged at DEBUG everywhere: no join token and no SRTP key appears."""

from __future__ import annotations

import asyncio
import base64
import logging
import os

import pytest

from emulator.vc_calls import CallState
from emulator.vc_faults import CallFault
from media_worker.outcomes import EndReason

from .conftest import TOKEN, WAIT, harness


class _RecordingRandom:
    """os.urandom that remembers what it handed out, so the test knows every SRTP key generated."""

    def __init__(self) -> None:
        self.issued: list[bytes] = []

    def __call__(self, n: int) -> bytes:
        data = os.urandom(n)
        self.issued.append(data)
        return data


def test_no_token_or_key_reaches_logs_or_output(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    randomness = _RecordingRandom()

    async def scenario() -> None:
        async with harness() as h:
            h.emulator.add_fault(CallFault(hold_resume_after_s=0.2, update_refresh_after_s=0.1))
            call = h.call(h.plan(media_app="record"), urandom=randomness)
            running = asyncio.create_task(call.run())
            record = await h.emulator.wait_for_call(state=CallState.CONNECTED, timeout_s=WAIT)
            await h.emulator.wait_until(lambda: "answered:sendrecv" in record.history, WAIT)
            call.hangup(EndReason.MEETING_ENDED)
            result = await asyncio.wait_for(running, WAIT)
            print(result.summary(), call.snapshot(), repr(call), repr(result))
            print(record.summary(), repr(record))

    with caplog.at_level(logging.DEBUG):
        asyncio.run(scenario())

    output = capsys.readouterr()
    text = "\n".join([caplog.text, output.out, output.err])
    assert text.strip(), "the scenario logged nothing, so this test would prove nothing"
    for form in (TOKEN, TOKEN.replace("=", "%3D"), "loop+back/token"):
        assert form not in text
    keys = [chunk for chunk in randomness.issued if len(chunk) >= 28]  # SDES key||salt: 30 or 46 bytes
    assert keys, "no SRTP key was generated through the injected random source"
    for key in keys:
        assert base64.b64encode(key).decode() not in text
        assert key.hex() not in text
