"""``python -m media_worker``: settings errors, the ``call`` subcommand, and a real start/SIGTERM/exit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

import media_worker.__main__ as entry
from chalicelib.contract import DialRequest
from media_worker import cli_call
from media_worker.media_files import RecordedCall
from media_worker.net.media_engine import MediaEngine, PortAllocator
from media_worker.net.sip_pool import SipConnectionPool
from media_worker.net.tls import client_context
from media_worker.service import call_factory
from media_worker.settings import WorkerSettings
from tests.worker.supervisor.conftest import JOIN_TOKEN, REGION, TABLE, create_table
from tests.worker.supervisor.fake_calls import SAFETY_TIMEOUT_S

ROOT = Path(__file__).resolve().parents[3]
SERVICE_ENV = {"DIAL_QUEUE_URL": "http://127.0.0.1:9/queue/dialout", "CALLS_TABLE": TABLE}


def run_module(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "media_worker", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_bad_setting_stops_the_service_with_the_variable_named() -> None:
    done = run_module(env={**SERVICE_ENV, "MAX_CALLS": "lots"})
    assert done.returncode == entry.EXIT_CONFIG
    assert "MAX_CALLS" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_queue_and_table_are_both_named() -> None:
    done = run_module(env={})
    assert done.returncode == entry.EXIT_CONFIG
    assert "DIAL_QUEUE_URL" in done.stderr
    assert "CALLS_TABLE" in done.stderr


def test_a_secret_setting_is_never_echoed() -> None:
    done = run_module(env={**SERVICE_ENV, "SIP_DIGEST_PASSWORD": "hunter2-not-for-logs"})
    assert done.returncode == entry.EXIT_CONFIG
    assert "SIP_DIGEST_USERNAME" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert entry.main(["--help"], environ={}) == 0
    assert "call --uri" in capsys.readouterr().out
    assert entry.main(["frobnicate"], environ={}) == entry.EXIT_CONFIG
    assert "usage" in capsys.readouterr().err


def test_call_subcommand_hands_its_arguments_to_the_call_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_main(argv: Sequence[str]) -> int:
        seen.append(list(argv))
        return 3

    monkeypatch.setattr(cli_call, "main", fake_main)
    assert entry.main(["call", "--uri", "sip:1@vc.example", "--from", "+12065550100"], environ={}) == 3
    assert seen == [["--uri", "sip:1@vc.example", "--from", "+12065550100"]]


@pytest.fixture
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def read_lines_until(stream: IO[str], marker: str, seen: list[str]) -> dict[str, Any] | None:
    """Read log lines (bounded by a watchdog) until one whose message is ``marker``; None at EOF."""
    for line in stream:
        seen.append(line)
        if line.startswith("{") and json.loads(line).get("message") == marker:
            found: dict[str, Any] = json.loads(line)
            return found
    return None


@pytest.mark.loopback
def test_the_service_starts_serves_health_and_exits_0_on_sigterm(moto_server: str) -> None:
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=moto_server)
    queue_url = sqs.create_queue(QueueName="dialout")["QueueUrl"]
    create_table(boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_server))
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": moto_server,
        "DIAL_QUEUE_URL": queue_url,
        "CALLS_TABLE": TABLE,
        "HEALTH_HOST": "127.0.0.1",
        "HEALTH_PORT": "0",
        "MEDIA_BIND_IP": "127.0.0.1",
        "MAX_CALLS": "4",
        "WORKER_ID": "worker-test",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "media_worker"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(SAFETY_TIMEOUT_S * 3, worker.kill)
    watchdog.start()
    seen: list[str] = []
    try:
        assert worker.stdout is not None
        started = read_lines_until(worker.stdout, "health server listening", seen)
        assert started is not None, "".join(seen)
        with urllib.request.urlopen(f"http://127.0.0.1:{started['port']}/healthz", timeout=5) as reply:
            assert json.load(reply) == {"status": "ok"}
        worker.send_signal(signal.SIGTERM)
        assert read_lines_until(worker.stdout, "media worker stopped", seen) is not None, "".join(seen)
        assert worker.wait() == 0
    finally:
        watchdog.cancel()
        worker.kill()
        worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()


def test_the_production_factory_builds_a_real_call_for_a_job() -> None:
    job = DialRequest.model_validate(
        {
            "call_id": "4b5e3c0a-7c2e-4f4e-9a57-0c3f8f0f1a2b:vc1",
            "meeting_id": "4b5e3c0a-7c2e-4f4e-9a57-0c3f8f0f1a2b",
            "media_region": REGION,
            "attendee_id": "9a1d2f3e-1111-4222-8333-444455556666",
            "join_token": JOIN_TOKEN,
            "target": {"name": "vc1", "host": "vc.example.test", "from_number": "+12065550100"},
            "requested_at": "2024-05-01T12:00:00Z",
            "event_id": "ev-1",
        }
    )
    settings = WorkerSettings(media_bind_ip="127.0.0.1")
    states: list[str] = []

    async def main() -> None:
        make = call_factory(
            settings,
            pool=SipConnectionPool(ssl_context=client_context()),
            engine=MediaEngine(),
            ports=PortAllocator("127.0.0.1", settings.rtp_port_min, settings.rtp_port_max),
        )
        call = make(job, states.append)
        assert isinstance(call, RecordedCall)
        assert call.state == "dialing"
        assert JOIN_TOKEN not in repr(call) + json.dumps(call.snapshot())

    asyncio.run(main())
