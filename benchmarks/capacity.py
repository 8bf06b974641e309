"""Media capacity of one worker core: N held calls against the Voice Connector emulator, next to a bare loop.

In one run, for each N:

1. **Worker.** This process, pinned to one core and on uvloop when installed, runs the real
   ``SipConnectionPool`` + ``MediaEngine`` + ``Call`` objects (media app ``silence``) and places N calls
   over SIP/TLS + SDES-SRTP to the emulator, a separate process pinned to the other core. Calls are set up
   at ``--rate`` per second, held through ``--warmup``, then measured for ``--hold`` seconds.
2. **Reference.** The same process then runs a bare media loop (one shared clock; per stream and tick
   protect + ``sendto``; ``add_reader`` drain + unprotect; nothing else) with N streams against the same
   bare loop in a peer process on the other core, for the same warm-up and window.

Figures: CPU = process user+sys / wall over the window; CPU ms per call-second and the worker/reference
ratio; tick lateness of the shared clock; loss both ways; SRTP failures; RSS growth per held call (VmRSS
at the end of the window minus before the first call); emulator CPU and the CPU other processes used
meanwhile (a busy machine shows up there). Nothing asserts a time.

Jitter, computed identically for the worker and the reference over the same number of sampled streams:

* **send jitter** (``jitter_p99_ms``, the goal): per sampled stream, lateness = the instant this process's
  ``sendto`` returned minus the frame's scheduled tick (read from its RTP timestamp), minus that stream's
  own median lateness; p99 over every sample. This is what a receiver's jitter buffer sees of our sending.
* **arrival jitter** (``arrival_jitter_p99_ms``): the same arithmetic on the instants this process read
  the far end's packets. It measures the far process's sending (the emulator, or the bare peer for the
  reference) plus this process's reading, so the emulator's own scheduling is in it.

    python benchmarks/capacity.py [--calls 400] [--hold 10] [--warmup 2] [--sweep 100,200,400] [--json]
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
import subprocess
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

from benchmarks.capacity_bare import BareLoop, BareStream, open_sockets
from benchmarks.capacity_common import (
    PTIME,
    REPO_ROOT,
    CpuMark,
    PeerProcess,
    TimingSamples,
    choose_cores,
    percentile,
    pin_to,
    system_busy_s,
)
from benchmarks.capacity_worker import WorkerConfig, measure_worker

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


async def measure_reference(config: WorkerConfig, peer: PeerProcess, peer_ports: list[int]) -> dict[str, Any]:
    """The bare loop with ``config.calls`` streams facing the peer's bare loop."""
    sockets = open_sockets(config.calls)
    capacity = int((config.warmup_s + config.hold_s) / PTIME) + 200
    sampled = min(config.jitter_streams, config.calls)
    arrivals, sends = TimingSamples(sampled, capacity), TimingSamples(sampled, capacity)
    streams = [
        BareStream(i, sock, ("127.0.0.1", port), upstream=True, sample=i if i < sampled else None)
        for i, (sock, port) in enumerate(zip(sockets, peer_ports, strict=True))
    ]
    bare = BareLoop(streams, arrivals, sends)
    await asyncio.to_thread(peer.request, "start", ports=[sock.getsockname()[1] for sock in sockets])
    task = asyncio.get_running_loop().create_task(bare.run())
    try:
        await asyncio.sleep(config.warmup_s)
        mark, busy, totals = CpuMark.now(), system_busy_s(), bare.totals()
        peer_start = await asyncio.to_thread(peer.request, "mark")
        arrivals.active = sends.active = bare.record_lateness = True
        await asyncio.sleep(config.hold_s)
        arrivals.active = sends.active = bare.record_lateness = False
        end_mark, end_busy, end_totals = CpuMark.now(), system_busy_s(), bare.totals()
        peer_end = await asyncio.to_thread(peer.request, "mark")
    finally:
        bare.stop()
        await task
        for sock in sockets:
            sock.close()
    wall = end_mark.wall_s - mark.wall_s
    cpu_s = end_mark.cpu_s - mark.cpu_s
    peer_cpu = (peer_end["cpu_s"] - peer_start["cpu_s"]) / (peer_end["wall_s"] - peer_start["wall_s"])
    delta = {key: end_totals[key] - totals[key] for key in totals}
    far_expected = peer_end["expected"] - peer_start["expected"]
    far_lost = far_expected - (peer_end["received"] - peer_start["received"])
    return {
        "window_s": round(wall, 3),
        "cpu_pct": round(100 * cpu_s / wall, 1),
        "cpu_ms_per_call_s": round(1000 * cpu_s / wall / config.calls, 4),
        "tick_lateness_p99_ms": round(1000 * percentile(bare.lateness, 99), 3),
        "jitter_p99_ms": round(percentile(sends.jitter_ms(), 99), 3),
        "jitter_packets": sends.packets(),
        "arrival_jitter_p99_ms": round(percentile(arrivals.jitter_ms(), 99), 3),
        "arrival_jitter_packets": arrivals.packets(),
        "wakeups_per_s": round((end_mark.wakeups - mark.wakeups) / wall),
        "loss_pct": round(100 * max(delta["expected"] - delta["received"], 0) / max(delta["expected"], 1), 4),
        "peer_loss_pct": round(100 * max(far_lost, 0) / max(far_expected, 1), 4),
        "srtp_failures": delta["srtp_failures"] + peer_end["srtp_failures"],
        "peer_cpu_pct": round(100 * peer_cpu, 1),
        "other_cpu_pct": round(100 * (end_busy - busy) / wall - 100 * cpu_s / wall - 100 * peer_cpu, 1),
    }


def run_once(config: WorkerConfig, peer_app: str) -> dict[str, Any]:
    """Worker phase, then reference phase, each against a fresh peer process; always stops the peers."""
    worker_core, peer_core = choose_cores()
    pin_to(worker_core)
    core_args = [] if peer_core is None else ["--core", str(peer_core)]
    emulator = PeerProcess("vc", "--peer-app", peer_app, *core_args)
    try:
        ready = emulator.reply()
        worker = _run(measure_worker(config, emulator, ready["ca_file"], int(ready["port"])))
    finally:
        emulator.close()
    bare_peer = PeerProcess("bare", "--streams", str(config.calls), *core_args)
    try:
        ports = [int(port) for port in bare_peer.reply()["ports"]]
        reference = _run(measure_reference(config, bare_peer, ports))
    finally:
        bare_peer.close()
    ratio = worker["cpu_ms_per_call_s"] / reference["cpu_ms_per_call_s"]
    return {
        "config": {
            "calls": config.calls,
            "hold_s": config.hold_s,
            "warmup_s": config.warmup_s,
            "setup_rate": config.setup_rate,
            "jitter_streams": config.jitter_streams,
            "event_loop": _event_loop_name(),
            "worker_core": worker_core,
            "peer_core": peer_core,
            "peer_app": peer_app,
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
        },
        "worker": worker,
        "reference": reference,
        "ratio": round(ratio, 3),
        "goals": goals(config.calls, worker, ratio),
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
    ("ref send jitter", 15),
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
        f"{reference['jitter_p99_ms']:.2f}",
        f"{worker['arrival_jitter_p99_ms']:.2f}",
        f"{reference['arrival_jitter_p99_ms']:.2f}",
        f"{worker['tick_lateness_p99_ms']:.2f}",
        f"{reference['tick_lateness_p99_ms']:.2f}",
        str(worker["wakeups_per_s"]),
        str(reference["wakeups_per_s"]),
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
        f"({worker['jitter_p99_ms']:.2f} ms)",
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
        "* arrival jitter: packets from the far process (the emulator for the worker, the bare peer for the "
        "reference);\n  it includes that process's own scheduling. Send jitter is this process's alone."
    )
    first = results[0]["config"]
    print(
        f"\n{first['event_loop']}; worker core {first['worker_core']}, peer core {first['peer_core']}; "
        f"hold {first['hold_s']:g} s after {first['warmup_s']:g} s warm-up; jitter over "
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
    if args.calls < 1 or args.hold <= 0 or args.warmup < 0 or args.rate <= 0:
        parser.error("--calls, --hold and --rate must be positive, --warmup not negative")
    if args.nice and not args.sweep:
        os.nice(args.nice)  # inherited by the peer processes
    if args.sweep:
        sizes = [int(part) for part in args.sweep.split(",") if part.strip()]
        results = [_sweep_one(args, calls) for calls in sizes]
    else:
        config = WorkerConfig(args.calls, args.hold, args.warmup, args.rate, args.jitter_streams)
        results = [run_once(config, args.peer_app)]
    if args.json:
        print(json.dumps({"results": results}, indent=2))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
