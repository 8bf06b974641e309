"""benchmarks/protocol.py runs end to end with tiny counts and reports every figure (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SUITES = {
    "AES_CM_128_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_32",
    "AES_256_CM_HMAC_SHA1_80",
    "AES_256_CM_HMAC_SHA1_32",
    "AEAD_AES_128_GCM",
    "AEAD_AES_256_GCM",
}


def test_protocol_benchmark_quick_run_prints_every_figure_as_json() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/protocol.py", "--quick", "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures) == {"config", "invite", "sdp", "srtp"}
    assert set(figures["invite"]) == {
        "parse_serialise_per_s",
        "parse_serialise_us",
        "parse_per_s",
        "reference_split_dict_per_s",
        "ratio_to_reference",
    }
    assert set(figures["sdp"]) == {"offer_answer_per_s", "offer_answer_us"}
    assert set(figures["srtp"]) == {"reference", "reference_us_per_packet", "suites"}
    assert figures["srtp"]["reference"]["suite"] == "AES_CM_128_HMAC_SHA1_80"
    assert set(figures["srtp"]["suites"]) == SUITES
    for suite in figures["srtp"]["suites"].values():
        assert set(suite) == {"us_per_packet", "ratio_to_reference"}
        assert suite["us_per_packet"] > 0
    assert figures["config"]["rtp_packet_bytes"] == 172
    assert figures["invite"]["parse_serialise_per_s"] > 0


def test_protocol_benchmark_human_output_names_the_reference() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/protocol.py", "--quick", "--repeat", "1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "reference split+dict" in result.stdout
    assert "raw pylibsrtp AES_CM_128_HMAC_SHA1_80" in result.stdout
    assert all(suite in result.stdout for suite in SUITES)
