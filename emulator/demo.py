"""``python -m emulator demo``: the whole pipeline on one machine, as production runs it.

moto (SQS, DynamoDB, EventBridge), the Chime SDK Meetings and Voice Connector emulators, the Chalice handlers
behind EventBridge rules with the app's own patterns, and the worker's production entry point in a
subprocess; then a scripted scenario (see ``emulator.demo_scenario``) with a live status table, a summary per
call, and an output folder with the recordings, a PNG timeline and ``summary.json``. Exit status 0 only if
every expectation held; no join token is ever printed or written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final, TextIO

from emulator.demo_events import schedule_of
from emulator.demo_report import call_summaries, render_summary, write_outputs, write_summary
from emulator.demo_sandbox import DEMO_STAGE, SWEEP_EVERY_S, VC_HOST, Sandbox, open_sandbox
from emulator.demo_scenario import Expectations, run_scenario, scenario_meetings
from emulator.demo_watch import Console

__all__ = ["DEFAULT_OUT", "configure", "run", "run_demo"]

DEFAULT_OUT: Final = Path("demo-output")


def configure(parser: argparse.ArgumentParser) -> None:
    """The ``demo`` command's options."""
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (for machines)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument(
        "--keep-running", action="store_true", help="leave the sandbox up until Ctrl-C for exploration"
    )
    parser.add_argument("--show-logs", action="store_true", help="echo the handlers' JSON logs to stderr")


def _introduce(sb: Sandbox, app: Any) -> None:
    say = sb.console.say
    say("1. Sandbox on 127.0.0.1")
    say(f"   moto (SQS, DynamoDB, EventBridge) {sb.moto_url}; Meetings API emulator {sb.meetings.url}")
    say(f"   Voice Connector emulator sips:{VC_HOST}:{sb.vc.port} (TLS, SRTP required, its own CA)")
    say(
        f"   from deploy/merge-template.json: table {sb.resources.table_name}, dial queue and DLQ "
        f"{sb.resources.queue_url.rsplit('/', 1)[-1]}"
    )
    for route in sb.routes:
        say(f"   EventBridge rule {route.rule_name} -> SQS -> {route.handler}: {json.dumps(route.pattern)}")
    say(
        f"   sweep_calls: every {SWEEP_EVERY_S:.0f} s locally (production: {schedule_of(app, 'sweep_calls')})"
    )
    say(f"   worker: python -m media_worker (pid {sb.worker.pid}), health {sb.worker.health_url}")
    say("   dial plan: sales-* and support-* dial vc1 (tone app); anything else is not dialed")


def _check_setup(sb: Sandbox, ex: Expectations, app: Any) -> None:
    patterns = {s.name: s.event_pattern for s in app.event_sources if hasattr(s, "event_pattern")}
    deployed = {
        route.handler: json.loads(sb.events.describe_rule(Name=route.rule_name)["EventPattern"])
        for route in sb.routes
    }
    ex.check("rules_are_the_apps", deployed == patterns, f"{len(deployed)} rules carry the app's patterns")
    tables = sb.dynamodb.list_tables()["TableNames"]
    queues = sb.sqs.list_queues()["QueueUrls"]
    ex.check(
        "resources_from_template",
        sb.resources.table_name in tables
        and {sb.resources.queue_url, sb.resources.dead_letter_queue_url} <= set(queues),
        "calls table, dial queue and its DLQ exist as the template defines them",
    )


def _token_free(sb: Sandbox, texts: list[str], out_dir: Path) -> bool:
    tokens = [t for t in sb.tokens if t]
    worker_log = sb.worker.log_path.read_text(encoding="utf-8", errors="replace")
    blobs = [*texts, sb.handler_log.getvalue(), worker_log]
    files = [p.read_bytes() for p in out_dir.rglob("*") if p.is_file()]
    in_text = any(t in blob for t in tokens for blob in blobs)
    in_files = any(t.encode() in blob for t in tokens for blob in files)
    return bool(tokens) and not in_text and not in_files and not sb.console.leaked


def _keep_running(sb: Sandbox, out: TextIO) -> None:
    from emulator.__main__ import wait_for_stop_signal

    print("\nThe sandbox stays up until Ctrl-C. Endpoints and environment:", file=out)
    env = {
        "AWS_ENDPOINT_URL_SQS": sb.moto_url,
        "AWS_ENDPOINT_URL_DYNAMODB": sb.moto_url,
        "AWS_ENDPOINT_URL_EVENTBRIDGE": sb.moto_url,
        "AWS_ENDPOINT_URL_CHIME_SDK_MEETINGS": sb.meetings.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        **{k: v for k, v in sb.control_env.items() if k != "DIAL_PLAN"},
    }
    for name, value in env.items():
        print(f"  export {name}={value}", file=out)
    print(f"  Voice Connector: sips:{VC_HOST}:{sb.vc.port}, CA file {sb.vc.ca_file}", file=out)
    print("  The worker was stopped by the final step; start another with the same environment:", file=out)
    worker_env = " ".join(f"{k}={v}" for k, v in sb.worker.environment.items() if not k.startswith("AWS_S"))
    print(f"  {worker_env} python -m media_worker", file=out, flush=True)
    wait_for_stop_signal()


def run_demo(
    out: TextIO = sys.stdout,
    *,
    as_json: bool = False,
    out_dir: Path = DEFAULT_OUT,
    keep_running: bool = False,
    show_logs: bool = False,
    err: TextIO = sys.stderr,
) -> int:
    """Run the scenario; print the narrative and summary (or JSON). Returns the exit status."""
    import app as app_module

    console = Console(out, quiet=as_json, live=out.isatty() and not as_json)
    ex = Expectations(console.say)
    summary: dict[str, Any] = {"stage": DEMO_STAGE, "sweep_every_s": SWEEP_EVERY_S}
    failure: str | None = None
    out_dir = out_dir.resolve()
    plans = scenario_meetings()
    with open_sandbox(console) as sb:
        try:
            _introduce(sb, app_module.app)
            _check_setup(sb, ex, app_module.app)
            run_scenario(sb, ex, plans)
        except Exception as exc:  # a step that could not run at all is a failed demo, with its reason
            failure = f"{type(exc).__name__}: {exc}"
        sb.monitor.stop()
        console.end_table()
        calls = call_summaries(sb, plans)
        written = write_outputs(sb, calls, out_dir)
        ex.check(
            "outputs_written",
            all(p.exists() for p in written),
            f"{len(written)} files in {out_dir} (recordings, timeline.png)",
        )
        summary.update(
            calls=calls,
            handler_invocations=sb.invoker.counts(),
            invoker_errors=list(sb.invoker.errors),
            events_put=len(sb.forwarder.emitted),
        )
        for line in ["", *render_summary(calls)]:
            console.say(line)
        summary["checks"] = ex.items
        write_summary(summary, out_dir)
        clean = _token_free(sb, [*console.printed, json.dumps(summary)], out_dir)
        ex.check("token_never_printed", clean, "no join token in any output, log or file")
        if failure is not None:
            ex.check("scenario_ran", False, f"the scenario stopped: {failure}")
        ok = ex.all_ok
        summary.update(ok=ok, checks=ex.items)
        write_summary(summary, out_dir)
        if show_logs:
            err.write(console.redact(sb.handler_log.getvalue()))
        if as_json:
            print(console.redact(json.dumps(summary, indent=2, sort_keys=True)), file=out, flush=True)
        else:
            console.say("All expectations held." if ok else "The demo did NOT behave as expected.")
            console.say(f"Output: {out_dir}")
        if not ok:
            failed = [c["name"] for c in ex.items if not c["ok"]]
            print(f"demo failed: {', '.join(failed)}", file=err, flush=True)
        if keep_running:
            _keep_running(sb, err if as_json else out)
    return 0 if ok else 1


def run(args: argparse.Namespace) -> int:
    return run_demo(
        sys.stdout,
        as_json=bool(args.json),
        out_dir=Path(getattr(args, "out", DEFAULT_OUT)),
        keep_running=bool(getattr(args, "keep_running", False)),
        show_logs=bool(getattr(args, "show_logs", False)),
    )
