"""Control-plane benchmark: MeetingStarted events per second through ``on_meeting_started``.

Each event belongs to a real meeting created with the unmodified boto3 ``chime-sdk-meetings`` client against
the Meetings emulator, and matches the benchmark's ``DIAL_PLAN``, so every event takes the full path: meeting
record read, call claim (transaction), CreateAttendee, attendee + job write, SendMessage. Events are handled
one at a time, as one Lambda instance handles them; the handler is invoked through ``chalice.test.Client``
with the production wiring (``build_plane``, cached boto3 clients, Powertools logs and metrics, written to
``os.devnull`` here instead of the Lambda runtime's stdout).

AWS is moto in server mode (``ThreadedMotoServer`` on 127.0.0.1, a free port), not in-process ``mock_aws``:
in production every SQS and DynamoDB call is an HTTP request, and server mode keeps that whole path (request
signing, serialisation, the connection pool, a socket round trip, response parsing) where ``mock_aws``
would short-circuit it inside botocore. The Meetings emulator is an HTTP server in this process too. Loopback
has no network latency, so the figures are the handler's own cost plus the local servers' cost; the ratios
against a bare PutItem + SendMessage on the same moto are the numbers to compare across machines.

Also measured: the cold import of ``app`` (what a Lambda cold start pays before the first event), each in a
fresh interpreter, next to the cold import of ``boto3`` alone as the reference.

Usage: ``python benchmarks/control_plane.py [--events N] [--import-runs N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Final, TextIO

# Run as a script from the repository root: make the project's packages importable.
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import boto3  # noqa: E402 - after the sys.path line above
from botocore.config import Config  # noqa: E402 - after the sys.path line above
from chalice.test import Client  # noqa: E402 - after the sys.path line above

import app as app_module  # noqa: E402 - after the sys.path line above
from chalicelib import clients  # noqa: E402 - after the sys.path line above
from emulator.local_aws import (  # noqa: E402 - after the sys.path line above
    LOCAL_REGION,
    MotoServer,
    aws_environment,
    create_resources,
    handler_output_to,
    load_template,
    patched_environ,
)
from emulator.meetings_api import MeetingsEmulator  # noqa: E402 - after the sys.path line above
from emulator.meetings_events import MEETING_STARTED, to_eventbridge  # noqa: E402 - after the sys.path line
from emulator.meetings_store import MAX_ACTIVE_MEETINGS, MeetingsStore  # noqa: E402 - after the sys.path line

__all__ = ["main", "measure_import", "percentile", "run_benchmark"]

STAGE: Final = "bench"  # not in .chalice/config.json: only the top-level environment applies
DIAL_PLAN: Final = {
    "rules": [
        {
            "name": "bench",
            "match": {"external_meeting_id": "bench-*"},
            "targets": [{"name": "vc1", "host": "vc.localtest", "port": 5061, "from_number": "+12065550100"}],
        }
    ]
}
_IMPORT_PROBE: Final = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (defined for any non-empty sample)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _summary_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "max_ms": round(max(ms), 3),
    }


def measure_import(module: str, runs: int) -> dict[str, float | int]:
    """Seconds to ``import module`` in a fresh interpreter (cwd = repository root), ``runs`` times."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    timings = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE.format(module=module)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        timings.append(float(done.stdout.strip().splitlines()[-1]))
    return {
        "runs": runs,
        "min_s": round(min(timings), 4),
        "median_s": round(statistics.median(timings), 4),
    }


class _RequestCounter:
    """Counts API calls per ``service.Operation`` through botocore's ``after-call`` event."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, event_name: str, **kwargs: Any) -> None:
        self.counts[event_name.removeprefix("after-call.")] += 1

    def attach(self, client: Any) -> None:
        client.meta.events.register("after-call", self)


def _meeting_events(chime: Any, meetings: MeetingsEmulator, count: int) -> list[dict[str, Any]]:
    """``count`` real meetings created through boto3, each with the MeetingStarted the emulator emitted."""
    details: dict[str, dict[str, Any]] = {}

    def listen(event_type: str, detail: dict[str, Any]) -> None:
        if event_type == MEETING_STARTED:
            details[detail["meetingId"]] = detail

    meetings.add_listener(listen)
    try:
        ids = [
            chime.create_meeting(
                ClientRequestToken=uuid.uuid4().hex, MediaRegion=LOCAL_REGION, ExternalMeetingId=f"bench-{i}"
            )["Meeting"]["MeetingId"]
            for i in range(count)
        ]
    finally:
        meetings.remove_listener(listen)
    return [to_eventbridge(details[meeting_id], LOCAL_REGION, meetings.store.account) for meeting_id in ids]


def _time_handler(lambdas: Client, events: list[dict[str, Any]]) -> list[float]:
    timings = []
    with open(os.devnull, "w", encoding="utf-8") as sink, handler_output_to(sink):
        for event in events:
            started = time.perf_counter()
            lambdas.lambda_.invoke("on_meeting_started", event)
            timings.append(time.perf_counter() - started)
    return timings


def _time_bare_calls(sqs: Any, dynamodb: Any, table: str, pairs: int, body_size: int) -> list[float]:
    """One PutItem + one SendMessage per sample, through the handlers' own clients, to a scratch queue."""
    scratch = sqs.create_queue(QueueName="bench-scratch")["QueueUrl"]
    body = "x" * body_size
    timings = []
    for i in range(pairs):
        started = time.perf_counter()
        dynamodb.put_item(TableName=table, Item={"pk": {"S": f"BENCH#{i}"}, "payload": {"S": body}})
        sqs.send_message(QueueUrl=scratch, MessageBody=body)
        timings.append(time.perf_counter() - started)
    return timings


def _queued_messages(sqs: Any, queue_url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def run_benchmark(events: int) -> dict[str, Any]:
    """Drive ``events`` measured MeetingStarted events (plus one first, unmeasured) and the bare reference."""
    # One real meeting per event: the account quota of active meetings is raised, as it would be on request.
    store = MeetingsStore(max_active_meetings=max(MAX_ACTIVE_MEETINGS, events + 1))
    with MeetingsEmulator("127.0.0.1", 0, store=store) as meetings, MotoServer() as moto:
        environment = {**aws_environment(moto.url, meetings.url), "DIAL_PLAN": json.dumps(DIAL_PLAN)}
        with patched_environ(environment):
            sqs, dynamodb = boto3.client("sqs"), boto3.client("dynamodb")
            local = create_resources(sqs, dynamodb, stage=STAGE, template=load_template())
            chime = boto3.client("chime-sdk-meetings", config=Config(retries={"total_max_attempts": 1}))
            all_events = _meeting_events(chime, meetings, events + 1)
            with (
                patched_environ({"CALLS_TABLE": local.table_name, "DIAL_QUEUE_URL": local.queue_url}),
                Client(app_module.app, stage_name=STAGE, project_dir=str(REPO_ROOT)) as lambdas,
            ):
                # The first event creates the handler's boto3 clients (a cold Lambda's first event does too).
                (first_s,) = _time_handler(lambdas, all_events[:1])
                counter = _RequestCounter()
                handler_sqs, handler_dynamodb = clients.get_sqs_client(), clients.get_dynamodb_client()
                for client in (handler_sqs, handler_dynamodb, clients.get_meetings_client()):
                    counter.attach(client)
                handler_s = _time_handler(lambdas, all_events[1:])
                per_event = {name: n / events for name, n in sorted(counter.counts.items())}
                jobs = _queued_messages(sqs, local.queue_url)
                body = sqs.receive_message(QueueUrl=local.queue_url, WaitTimeSeconds=0)["Messages"][0]["Body"]
                bare_s = _time_bare_calls(handler_sqs, handler_dynamodb, local.table_name, events, len(body))
            for client in (sqs, dynamodb, chime):
                client.close()
    handler = _summary_ms(handler_s)
    bare = _summary_ms(bare_s)
    requests = sum(per_event.values())
    return {
        "events": events,
        "backend": "moto ThreadedMotoServer + Meetings emulator, HTTP on 127.0.0.1",
        "jobs_enqueued": jobs,
        "handler": {
            **handler,
            "events_per_second": round(events / sum(handler_s), 1),
            "first_event_ms": round(first_s * 1000, 3),
        },
        "requests_per_event": {**per_event, "total": requests},
        "bare_put_item_send_message": bare,
        "ratios": {
            "handler_to_bare_pair_p50": round(handler["p50_ms"] / bare["p50_ms"], 2),
            # The handler's requests priced at half a bare pair each: above 1 is our own code's cost.
            "handler_to_its_requests_at_bare_cost_p50": round(
                handler["p50_ms"] / (requests * bare["p50_ms"] / 2), 2
            ),
        },
    }


def _print_text(result: dict[str, Any], out: TextIO) -> None:
    handler, bare, ratios = result["handler"], result["bare_put_item_send_message"], result["ratios"]
    imports = result["import_s"]
    requests = ", ".join(
        f"{name} {n:g}" for name, n in result["requests_per_event"].items() if name != "total"
    )
    app_ms = {key: imports["app"][key] * 1000 for key in ("min_s", "median_s")}
    boto3_ms = {key: imports["boto3"][key] * 1000 for key in ("min_s", "median_s")}
    lines = [
        f"control plane: {result['events']} MeetingStarted events, one at a time ({result['backend']})",
        f"  on_meeting_started   p50 {handler['p50_ms']:.2f} ms   p95 {handler['p95_ms']:.2f} ms   "
        f"mean {handler['mean_ms']:.2f} ms   max {handler['max_ms']:.2f} ms",
        f"                       {handler['events_per_second']:.1f} events/s   "
        f"first event (clients created) {handler['first_event_ms']:.1f} ms   "
        f"jobs enqueued {result['jobs_enqueued']}",
        f"  requests per event   {result['requests_per_event']['total']:g}  ({requests})",
        f"  bare PutItem + SendMessage   p50 {bare['p50_ms']:.2f} ms   p95 {bare['p95_ms']:.2f} ms",
        f"  ratio handler / bare pair (p50)                  {ratios['handler_to_bare_pair_p50']:.2f}",
        "  ratio handler / its requests at bare cost (p50)  "
        f"{ratios['handler_to_its_requests_at_bare_cost_p50']:.2f}",
        f"cold import, fresh interpreter ({imports['app']['runs']} runs):",
        f"  import app     min {app_ms['min_s']:.0f} ms   median {app_ms['median_s']:.0f} ms",
        f"  import boto3   min {boto3_ms['min_s']:.0f} ms   median {boto3_ms['median_s']:.0f} ms",
        f"  ratio app / boto3 (median)   {ratios['import_app_to_boto3_median']:.2f}",
    ]
    print("\n".join(lines), file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=300, help="measured events (default: %(default)s)")
    parser.add_argument(
        "--import-runs", type=int, default=5, help="fresh interpreters per import (default: 5)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args(argv)
    if args.events < 1 or args.import_runs < 1:
        parser.error("--events and --import-runs must be at least 1")
    # Imports first, while this process has no server threads competing for the CPU.
    imports = {module: measure_import(module, args.import_runs) for module in ("app", "boto3")}
    result = run_benchmark(args.events)
    result["import_s"] = imports
    result["ratios"]["import_app_to_boto3_median"] = round(
        float(imports["app"]["median_s"]) / float(imports["boto3"]["median_s"]), 2
    )
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        _print_text(result, sys.stdout)
    expected_jobs = args.events + 1
    if result["jobs_enqueued"] != expected_jobs:
        print(f"expected {expected_jobs} dial jobs, found {result['jobs_enqueued']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
