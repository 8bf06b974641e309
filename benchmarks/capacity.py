"""Media capacity of one worker core: N held calls against the Voice Connector emulator, next to a bare loop.

In one run, for each N: this process, pinned to one core and on uvloop when installed, places N calls over
SIP/TLS + SDES-SRTP to the emulator (a separate process pinned to the other core) with the real
``SipConnectionPool`` + ``MediaEngine`` + ``Call`` objects (media app ``silence``), at ``--rate`` per second.
Then it alternates ``--rounds`` pairs of windows on those same calls:

1. **Worker.** The production media engine drives every call.
2. **Reference.** The engine pauses and a bare media loop (one shared clock; per stream and tick protect +
   ``sendto``; ``add_reader`` drain + unprotect; nothing else) drives the same sockets with the same
   negotiated keys against the same emulator; then the engine resumes.

Both sides therefore face the same peer, the same arrival pattern and the same process state, and
alternating them spreads the drift of a shared machine over both. Each window is ``--warmup`` seconds after
the swap followed by ``--hold`` measured seconds.

Figures: CPU = process user+sys / wall over a window; CPU ms per call-second, its median over each side's
windows, and the ratio of the medians (the goal), with the range of the per-pair ratios beside it; tick
lateness of the shared clock; loss both ways; SRTP failures; RSS growth per held call (VmRSS at the end of
the last worker window minus before the first call); emulator CPU and the CPU other processes used meanwhile
(a busy machine shows up there). Nothing asserts a time.

Jitter, computed identically for the worker and the reference over the same sampled streams:

* **send jitter** (``jitter_p99_ms``, the goal; median of the worker windows, the worst shown beside it):
  per sampled stream, lateness = the instant this process's ``sendto`` returned minus the frame's
  scheduled tick (read from its RTP timestamp), minus that stream's own median lateness; p99 over every
  sample. This is what a receiver's jitter buffer sees of our sending.
* **arrival jitter** (``arrival_jitter_p99_ms``): the same arithmetic on the instants this process read
  the emulator's packets. It includes the emulator's own scheduling.

    python benchmarks/capacity.py [--calls 400] [--hold 10] [--warmup 2] [--rounds 3] [--sweep 100,400]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a plain script from the repository root: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import importlib.metadata
import json
import os
import statistics
import subprocess
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

from benchmarks.capacity_common import REPO_ROOT, PeerProcess, choose_cores, pin_to
from benchmarks.capacity_worker import CapacityBench, WorkerConfig

__all__ = ["main"]

_T = TypeVar("_T")
GOAL_CALLS: Final = 400
GOAL_JITTER_MS: Final = 5.0
GOAL_RATIO: Final = 1.1
GOAL_RSS_KIB: Final = 150.0
_SWEEP_TIMEOUT_S: Final = 900.0


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    result: _T = uvloop.run(coroutine)
    return result


def _event_loop_name() -> str:
    try:
        return f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        return "asyncio"


async def measure(
    config: WorkerConfig, rounds: int, peer: PeerProcess, ca_file: str, port: int
) -> dict[str, Any]:
    """Set up the calls, then ``rounds`` pairs of worker and reference windows; always hangs up."""
    bench = CapacityBench(config, peer, ca_file, port)
    windows: dict[str, list[dict[str, Any]]] = {"worker": [], "reference": []}
    end_reasons: list[str] = []
    try:
        await bench.start()
        connected = bench.held()
        for _ in range(rounds):
            windows["worker"].append(await bench.worker_window())
            windows["reference"].append(await bench.reference_window())
    finally:
        end_reasons = await bench.close()
    return {
        "connected": connected,
        "setup_s": round(bench.setup_s, 2),
        "end_reasons": end_reasons,
        "rss_kib_before": bench.rss_before,
        "windows": windows,
    }


def _median(windows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(window[key] for window in windows))


_MEDIANS: Final = (
    "cpu_pct",
    "cpu_ms_per_call_s",
    "jitter_p99_ms",
    "arrival_jitter_p99_ms",
    "tick_lateness_p99_ms",
    "wakeups_per_s",
    "emulator_cpu_pct",
    "other_cpu_pct",
)


def _side(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's figures over its windows: medians (robust to one window that other load on the shared
    machine disturbed), the worst window's send jitter, the worst loss and every SRTP failure."""
    return {key: _median(windows, key) for key in _MEDIANS} | {
        "worst_jitter_p99_ms": max(window["jitter_p99_ms"] for window in windows),
        "loss_pct": max(window["loss_pct"] for window in windows),
        "emulator_loss_pct": max(window["emulator_loss_pct"] for window in windows),
        "srtp_failures": sum(window["srtp_failures"] for window in windows),
    }


def summarise(calls: int, measured: dict[str, Any]) -> dict[str, Any]:
    worker_windows = measured["windows"]["worker"]
    reference_windows = measured["windows"]["reference"]
    worker = _side(worker_windows) | {
        "held": min(window["held"] for window in worker_windows),
        "rss_kib_per_call": worker_windows[-1]["rss_kib_per_call"],
        "connected": measured["connected"],
        "setup_s": measured["setup_s"],
        "end_reasons": measured["end_reasons"],
    }
    reference = _side(reference_windows)
    pairs = [
        w["cpu_ms_per_call_s"] / r["cpu_ms_per_call_s"]
        for w, r in zip(worker_windows, reference_windows, strict=True)
    ]
    ratio = worker["cpu_ms_per_call_s"] / reference["cpu_ms_per_call_s"]
    return {
        "worker": worker,
        "reference": reference,
        "ratio": round(ratio, 3),
        "pair_ratios": [round(pair, 3) for pair in pairs],
        "windows": measured["windows"],
        "goals": goals(calls, worker, ratio),
    }


def run_once(config: WorkerConfig, rounds: int, peer_app: str) -> dict[str, Any]:
    """Both sides against one emulator process; always stops it."""
    worker_core, peer_core = choose_cores()
    pin_to(worker_core)
    core_args = [] if peer_core is None else ["--core", str(peer_core)]
    emulator = PeerProcess("vc", "--peer-app", peer_app, *core_args)
    try:
        ready = emulator.reply()
        measured = _run(measure(config, rounds, emulator, ready["ca_file"], int(ready["port"])))
    finally:
        emulator.close()
    return {
        "config": {
            "calls": config.calls,
            "hold_s": config.hold_s,
            "warmup_s": config.warmup_s,
            "rounds": rounds,
            "setup_rate": config.setup_rate,
            "jitter_streams": config.jitter_streams,
            "event_loop": _event_loop_name(),
            "worker_core": worker_core,
            "peer_core": peer_core,
            "peer_app": peer_app,
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
        },
        **summarise(config.calls, measured),
    }


def goals(calls: int, worker: dict[str, Any], ratio: float) -> dict[str, bool]:
    no_loss = worker["loss_pct"] == 0 and worker["emulator_loss_pct"] == 0 and worker["srtp_failures"] == 0
    return {
        "calls_held": calls >= GOAL_CALLS and worker["held"] == calls,
        "jitter_p99_under_5ms": worker["jitter_p99_ms"] < GOAL_JITTER_MS,
        "no_loss": no_loss,
        "cpu_ratio_at_most_1_1": ratio <= GOAL_RATIO,
        "rss_per_call_at_most_150kib": worker["rss_kib_per_call"] <= GOAL_RSS_KIB,
    }


_COLUMNS: Final = (
    ("N", 5),
    ("held", 5),
    ("worker CPU %", 12),
    ("ms/call-s", 9),
    ("ref ms/call-s", 13),
    ("ratio", 6),
    ("pair ratios", 17),
    ("loss %", 8),
    ("SRTP fail", 9),
    ("RSS KiB/call", 12),
    ("emu CPU %", 9),
    ("other CPU %", 11),
    ("ref other CPU %", 15),
)
_TIMING_COLUMNS: Final = (
    ("N", 5),
    ("send jitter p99 ms", 18),
    ("worst window", 12),
    ("ref send jitter", 15),
    ("ref worst", 9),
    ("arrival jitter p99 ms*", 22),
    ("ref arrival jitter*", 19),
    ("tick late p99 ms", 16),
    ("ref tick late", 13),
    ("wakeups/s", 9),
    ("ref wakeups/s", 13),
)


def _row(result: dict[str, Any]) -> list[str]:
    worker, reference = result["worker"], result["reference"]
    loss = max(worker["loss_pct"], worker["emulator_loss_pct"])
    return [
        str(result["config"]["calls"]),
        str(worker["held"]),
        f"{worker['cpu_pct']:.1f}",
        f"{worker['cpu_ms_per_call_s']:.3f}",
        f"{reference['cpu_ms_per_call_s']:.3f}",
        f"{result['ratio']:.2f}",
        "/".join(f"{pair:.2f}" for pair in result["pair_ratios"]),
        f"{loss:.3f}",
        str(worker["srtp_failures"]),
        f"{worker['rss_kib_per_call']:.1f}",
        f"{worker['emulator_cpu_pct']:.1f}",
        f"{worker['other_cpu_pct']:.1f}",
        f"{reference['other_cpu_pct']:.1f}",
    ]


def _timing_row(result: dict[str, Any]) -> list[str]:
    worker, reference = result["worker"], result["reference"]
    return [
        str(result["config"]["calls"]),
        f"{worker['jitter_p99_ms']:.2f}",
        f"{worker['worst_jitter_p99_ms']:.2f}",
        f"{reference['jitter_p99_ms']:.2f}",
        f"{reference['worst_jitter_p99_ms']:.2f}",
        f"{worker['arrival_jitter_p99_ms']:.2f}",
        f"{reference['arrival_jitter_p99_ms']:.2f}",
        f"{worker['tick_lateness_p99_ms']:.2f}",
        f"{reference['tick_lateness_p99_ms']:.2f}",
        f"{worker['wakeups_per_s']:.0f}",
        f"{reference['wakeups_per_s']:.0f}",
    ]


def _print_rows(columns: tuple[tuple[str, int], ...], rows: list[list[str]]) -> None:
    print("  ".join(name.rjust(width) for name, width in columns))
    for cells in rows:
        print("  ".join(cell.rjust(width) for cell, (_, width) in zip(cells, columns, strict=True)))


def _goal_words(result: dict[str, Any]) -> list[str]:
    n, worker, held = result["config"]["calls"], result["worker"], result["goals"]
    word = {True: "PASS", False: "FAIL"}
    return [
        f"N={n}: {word[held['calls_held']]} at least {GOAL_CALLS} calls held on one core "
        f"({worker['held']} of {n} held)",
        f"N={n}: {word[held['jitter_p99_under_5ms']]} per-stream send jitter p99 under {GOAL_JITTER_MS:g} ms "
        f"({worker['jitter_p99_ms']:.2f} ms, median window; worst {worker['worst_jitter_p99_ms']:.2f} ms)",
        f"N={n}: {word[held['no_loss']]} no loss (worker {worker['loss_pct']} %, emulator "
        f"{worker['emulator_loss_pct']} %, SRTP failures {worker['srtp_failures']})",
        f"N={n}: {word[held['cpu_ratio_at_most_1_1']]} CPU per call at most {GOAL_RATIO}x the reference "
        f"({result['ratio']:.2f}x)",
        f"N={n}: {word[held['rss_per_call_at_most_150kib']]} RSS per held call at most {GOAL_RSS_KIB:g} KiB "
        f"({worker['rss_kib_per_call']:.1f} KiB)",
    ]


def print_table(results: list[dict[str, Any]]) -> None:
    _print_rows(_COLUMNS, [_row(result) for result in results])
    print()
    _print_rows(_TIMING_COLUMNS, [_timing_row(result) for result in results])
    print(
        "* arrival jitter: the emulator's packets as this process read them; it includes the emulator's\n"
        "  own scheduling. Send jitter is this process's alone. Every figure is the median over each side's\n"
        "  windows, beside the worst window's send jitter (a window that other load on the machine\n"
        "  disturbed shows there; the 'other CPU' columns say how busy the rest of the machine was)."
    )
    first = results[0]["config"]
    print(
        f"\n{first['event_loop']}; worker core {first['worker_core']}, peer core {first['peer_core']}; "
        f"{first['rounds']} rounds of worker then reference windows on the same calls, each "
        f"{first['hold_s']:g} s after {first['warmup_s']:g} s warm-up; jitter over "
        f"{first['jitter_streams']} sampled streams; emulator media app: {first['peer_app']}; "
        f"nice {first['nice']}"
    )
    for result in results:
        print()
        for line in _goal_words(result):
            print(line)


def _sweep_one(args: argparse.Namespace, calls: int) -> dict[str, Any]:
    """One N in a fresh process, so every RSS baseline starts clean."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        *("--calls", str(calls), "--hold", str(args.hold), "--warmup", str(args.warmup)),
        *("--rounds", str(args.rounds)),
        *("--rate", str(args.rate), "--jitter-streams", str(args.jitter_streams)),
        *("--peer-app", args.peer_app, "--nice", str(args.nice), "--json"),
    ]
    completed = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=_SWEEP_TIMEOUT_S, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"N={calls} failed:\n{completed.stderr}")
    result: dict[str, Any] = json.loads(completed.stdout)["results"][0]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--calls", type=int, default=GOAL_CALLS, help="concurrent calls (default %(default)s)"
    )
    parser.add_argument(
        "--hold", type=float, default=10.0, help="measurement window, s (default %(default)s)"
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="held before measuring, s (default %(default)s)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="worker + reference window pairs (default %(default)s)"
    )
    parser.add_argument(
        "--rate", type=float, default=100.0, help="call setups per second (default %(default)s)"
    )
    parser.add_argument(
        "--sweep", help="comma-separated N values, each in a fresh process (e.g. 100,200,400)"
    )
    parser.add_argument(
        "--jitter-streams", type=int, default=50, help="streams whose every arrival is sampled (default 50)"
    )
    parser.add_argument(
        "--peer-app",
        choices=("silence", "tone"),
        default="silence",
        help="emulator media app: silence (light) or its real tone+record app",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="nice increment for this process and its peers (negative needs privileges; shields the "
        "figures from other load on a shared machine)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.hold <= 0 or args.warmup < 0 or args.rate <= 0 or args.rounds < 1:
        parser.error("--calls, --hold, --rate and --rounds must be positive, --warmup not negative")
    if args.nice and not args.sweep:
        os.nice(args.nice)  # inherited by the peer processes
    if args.sweep:
        sizes = [int(part) for part in args.sweep.split(",") if part.strip()]
        results = [_sweep_one(args, calls) for calls in sizes]
    else:
        config = WorkerConfig(args.calls, args.hold, args.warmup, args.rate, args.jitter_streams)
        results = [run_once(config, args.rounds, args.peer_app)]
    if args.json:
        print(json.dumps({"results": results}, indent=2))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
