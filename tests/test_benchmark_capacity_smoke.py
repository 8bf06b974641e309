"""benchmarks/capacity.py runs end to end with three calls and reports every figure (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_capacity_benchmark_small_run_prints_every_figure_as_json() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/capacity.py",
            "--calls",
            "3",
            "--hold",
            "1",
            "--warmup",
            "0.5",
            "--rounds",
            "2",
            "--json",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    (figures,) = json.loads(result.stdout)["results"]
    assert set(figures) == {"config", "worker", "reference", "ratio", "pair_ratios", "windows", "goals"}
    assert figures["config"]["calls"] == 3
    # Two rounds: each side measured twice, on the same calls, one ratio per pair.
    assert len(figures["windows"]["worker"]) == len(figures["windows"]["reference"]) == 2
    assert len(figures["pair_ratios"]) == 2
    worker, reference = figures["worker"], figures["reference"]
    assert {
        "cpu_pct",
        "cpu_ms_per_call_s",
        "jitter_p99_ms",
        "tick_lateness_p99_ms",
        "loss_pct",
        "srtp_failures",
        "rss_kib_per_call",
        "emulator_cpu_pct",
        "held",
    } <= set(worker)
    assert {"cpu_pct", "cpu_ms_per_call_s", "jitter_p99_ms", "loss_pct", "srtp_failures"} <= set(reference)
    assert worker["held"] == 3
    # The reference runs on the calls' own SRTP contexts and sockets: nothing it sends or reads is refused.
    assert worker["srtp_failures"] == reference["srtp_failures"] == 0
    assert set(figures["goals"]) == {
        "calls_held",
        "jitter_p99_under_5ms",
        "no_loss",
        "cpu_ratio_at_most_1_1",
        "rss_per_call_at_most_150kib",
    }
