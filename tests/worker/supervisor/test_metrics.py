"""Worker metrics come out as EMF JSON lines on stdout, flushed by the worker itself."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from media_worker.metrics import WorkerMetrics
from media_worker.net.media_engine import MediaStats
from tests.worker.supervisor.fake_calls import FakeTime

MEDIA = MediaStats(
    packets_sent=1000,
    packets_received=990,
    packets_lost=10,
    loss_fraction=0.01,
    jitter_ms=4.25,
    rtt_ms=30.0,
    srtp_failures=0,
    mos=4.2,
)


def emf_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def metric_names(blob: dict[str, Any]) -> set[str]:
    return {m["Name"] for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def test_flush_prints_every_worker_metric(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = WorkerMetrics(active_calls=lambda: 7)
    metrics.call_attempted()
    metrics.call_connected(0.2345)
    metrics.call_ended(61.5, MEDIA)
    metrics.call_failed("busy")
    metrics.redialed()
    metrics.flush()

    blobs = emf_lines(capsys.readouterr().out)
    main = blobs[-1]
    assert metric_names(main) >= {
        "CallsAttempted",
        "CallsConnected",
        "CallsFailed",
        "SetupLatencyMs",
        "ActiveCalls",
        "CallDurationSec",
        "PacketLossPct",
        "JitterMs",
        "Mos",
        "Redials",
    }
    assert main["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ChimeDialout"
    assert main["service"] == "media-worker"
    assert (main["ActiveCalls"], main["SetupLatencyMs"], main["PacketLossPct"]) == ([7.0], [234.5], [1.0])
    assert (main["CallDurationSec"], main["JitterMs"], main["Mos"]) == ([61.5], [4.25], [4.2])
    by_reason = [b for b in blobs if "reason" in b]
    assert [(b["reason"], b["service"], b["CallsFailed"]) for b in by_reason] == [
        ("busy", "media-worker", [1.0])
    ]
    assert ["service", "reason"] in by_reason[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"]


def test_a_call_without_received_media_reports_no_quality_figures(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = WorkerMetrics()
    metrics.call_ended(3.0, MediaStats(10, 0, 0, 0.0, 0.0, None, 0, 1.0))
    metrics.flush()
    (main,) = emf_lines(capsys.readouterr().out)
    assert metric_names(main) == {"CallDurationSec", "ActiveCalls"}


def test_run_flushes_on_its_interval(capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeTime()
    metrics = WorkerMetrics(active_calls=lambda: 2)

    async def main() -> None:
        flusher = asyncio.create_task(metrics.run(60.0, sleep=clock.sleep))
        await asyncio.sleep(0)
        metrics.call_attempted()
        assert emf_lines(capsys.readouterr().out) == []
        await clock.advance(60.0)
        (blob,) = emf_lines(capsys.readouterr().out)
        assert (blob["CallsAttempted"], blob["ActiveCalls"]) == ([1.0], [2.0])
        await clock.advance(60.0)
        (blob,) = emf_lines(capsys.readouterr().out)
        assert metric_names(blob) == {"ActiveCalls"}  # sampled on every flush, even a quiet minute
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)

    asyncio.run(main())
    assert clock.requested == [60.0, 60.0, 60.0]
