"""The control-plane benchmark runs as a script and prints the figures it promises (never judged on time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_control_plane_benchmark_prints_its_figures_as_json() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/control_plane.py", "--events", "5", "--import-runs", "1", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["events"] == 5
    assert result["jobs_enqueued"] == 6  # one unmeasured first event, then the five measured ones
    assert {"p50_ms", "p95_ms", "mean_ms", "max_ms", "events_per_second", "first_event_ms"} <= set(
        result["handler"]
    )
    assert {"p50_ms", "p95_ms"} <= set(result["bare_put_item_send_message"])
    assert set(result["ratios"]) == {
        "handler_to_bare_pair_p50",
        "handler_to_its_requests_at_bare_cost_p50",
        "import_app_to_boto3_median",
    }
    for module in ("app", "boto3"):
        assert set(result["import_s"][module]) == {"runs", "min_s", "median_s"}
    assert result["requests_per_event"]["sqs.SendMessage"] == 1
    assert result["requests_per_event"]["chime-sdk-meetings.CreateAttendee"] == 1
