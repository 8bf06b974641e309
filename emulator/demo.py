"""``python -m emulator demo``: the control plane, for real, on one machine.

Starts the Meetings API emulator and moto (server mode) on 127.0.0.1, creates the dial queue, its DLQ and the
calls table from the deployment template, creates a meeting with the unmodified boto3 client, and delivers
that meeting's own MeetingStarted / MeetingEnded events to the Chalice handlers, checking at every step what a
user relies on: exactly one dial job per (meeting, target), however often the event arrives; a hangup and no
attendee once the meeting ends; and a join token that never appears in any output.

Until the media worker joins in, the demo takes the dial job off the queue itself and shows it redacted.
The handlers' own JSON logs and metric blobs are captured (``--show-logs`` echoes them to stderr) and checked
for the token like everything else. Exit status 0 only if every check held.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

import boto3
from botocore.config import Config
from chalice.test import Client

import app as app_module
from chalicelib.call_registry import CallRecord, CallRegistry
from chalicelib.call_states import call_id_for
from chalicelib.contract import DialRequest
from emulator.local_aws import (
    LOCAL_REGION,
    MotoServer,
    aws_environment,
    create_resources,
    handler_output_to,
    load_template,
    patched_environ,
)
from emulator.meetings_api import MeetingsEmulator
from emulator.meetings_events import MEETING_ENDED, MEETING_STARTED, to_eventbridge
from emulator.meetings_store import MeetingsStore

__all__ = ["DEMO_DIAL_PLAN", "DEMO_STAGE", "DemoFailed", "run", "run_demo"]

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
#: Not a stage in .chalice/config.json: only the top-level environment applies, and DIAL_PLAN comes from here.
DEMO_STAGE: Final = "local"
DEMO_EXTERNAL_MEETING_ID: Final = "demo-standup"
DEMO_TARGET: Final = "vc1"
DEMO_DIAL_PLAN: Final = {
    "rules": [
        {
            "name": "demo",
            "match": {"external_meeting_id": "demo-*"},
            "targets": [
                {"name": DEMO_TARGET, "host": "vc.localtest", "port": 5061, "from_number": "+12065550100"}
            ],
        }
    ]
}
_REDACTED_MARK: Final = "***"


class DemoFailed(Exception):
    """A step could not even run (as opposed to a check that ran and did not hold)."""


@dataclass
class _Narrator:
    """Writes the narrative (unless JSON was asked for) and refuses to print any registered secret."""

    out: TextIO
    quiet: bool
    secrets: list[str] = field(default_factory=list)
    leaked: bool = False

    def say(self, text: str = "") -> None:
        for secret in self.secrets:
            if secret in text:
                self.leaked = True
                text = text.replace(secret, _REDACTED_MARK)
        if not self.quiet:
            print(text, file=self.out, flush=True)


@dataclass
class _Events:
    """Meeting lifecycle events from the emulator's listener (called on its request threads)."""

    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event_type: str, detail: dict[str, Any]) -> None:
        with self.lock:
            self.seen.append((event_type, detail))

    def eventbridge(self, event_type: str, meeting_id: str, account: str) -> dict[str, Any]:
        # The store calls listeners before the API reply is written, so the event is here already.
        with self.lock:
            details = [d for t, d in self.seen if t == event_type and d["meetingId"] == meeting_id]
        if not details:
            raise DemoFailed(f"the emulator emitted no {event_type} for meeting {meeting_id}")
        return to_eventbridge(details[-1], LOCAL_REGION, account)


@dataclass
class _Demo:
    narrator: _Narrator
    meetings: MeetingsEmulator
    chime: Any
    sqs: Any
    calls: CallRegistry
    queue_url: str
    lambdas: Client
    handler_log: io.StringIO
    checks: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append({"name": name, "ok": ok, "detail": detail})
        self.narrator.say(f"   [{'ok' if ok else 'FAILED'}] {detail}")
        return ok

    def invoke(self, handler: str, event: dict[str, Any]) -> None:
        with handler_output_to(self.handler_log):
            self.lambdas.lambda_.invoke(handler, event)

    def visible_messages(self) -> list[dict[str, Any]]:
        # WaitTimeSeconds=0: the queue's own default (from the template) is a 20 s long poll.
        reply = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        )
        messages: list[dict[str, Any]] = reply.get("Messages", [])
        return messages

    def messages_on_queue(self) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)[
            "Attributes"
        ]
        return sum(int(attributes[name]) for name in names)

    def call(self, call_id: str) -> CallRecord:
        record = self.calls.get(call_id)
        if record is None:
            raise DemoFailed(f"no call record {call_id} in the calls table")
        return record


def _started(demo: _Demo, events: _Events) -> tuple[str, str, DialRequest, dict[str, Any]]:
    say = demo.narrator.say
    created = demo.chime.create_meeting(
        ClientRequestToken=uuid.uuid4().hex,
        MediaRegion=LOCAL_REGION,
        ExternalMeetingId=DEMO_EXTERNAL_MEETING_ID,
    )
    meeting_id: str = created["Meeting"]["MeetingId"]
    say(f"2. CreateMeeting (boto3 chime-sdk-meetings) -> meeting {meeting_id}")
    say(f"   ExternalMeetingId {DEMO_EXTERNAL_MEETING_ID!r}: matches dial-plan rule 'demo' ('demo-*')")
    event = events.eventbridge(MEETING_STARTED, meeting_id, demo.meetings.store.account)
    say(f"3. The emulator emitted chime:MeetingStarted; EventBridge envelope id {event['id']}")
    say("   -> on_meeting_started (chalice.test Client, the handler as deployed)")
    demo.invoke("on_meeting_started", event)
    messages = demo.visible_messages()
    demo.check("one_job", len(messages) == 1, f"dial queue: {len(messages)} job(s) (expected 1)")
    if len(messages) != 1:
        raise DemoFailed("the dial job is missing, so the remaining steps cannot run")
    job = DialRequest.from_json(messages[0]["Body"])
    demo.narrator.secrets.append(job.join_token.get_secret_value())
    say("4. The dial job, as a worker will receive it (join token redacted):")
    for line in json.dumps(job.redacted(), indent=2, sort_keys=True).splitlines():
        say(f"   {line}")
    target = job.target
    demo.check(
        "job_target",
        (target.host, target.port, target.from_number) == ("vc.localtest", 5061, "+12065550100"),
        f"target {target.name}: {target.join_number}@{target.host}:{target.port}, From {target.from_number}",
    )
    token_owner = demo.meetings.is_token_valid(job.join_token.get_secret_value())
    demo.check(
        "token_valid",
        token_owner == (meeting_id, job.attendee_id),
        f"the job's join token belongs to attendee {job.attendee_id} of this meeting",
    )
    call_id = call_id_for(meeting_id, DEMO_TARGET)
    record = demo.call(call_id)
    say(f"5. Call record {call_id}: state={record.state} desired={record.desired} attempts={record.attempts}")
    demo.check(
        "record_queued",
        (record.state, record.desired, record.attendee_id) == ("queued", "connected", job.attendee_id),
        "the call waits for a worker (queued, desired connected, our attendee stored)",
    )
    return meeting_id, call_id, job, event


def _duplicate(demo: _Demo, event: dict[str, Any], call_id: str) -> None:
    demo.narrator.say("6. The same MeetingStarted again (EventBridge delivers at least once)")
    demo.invoke("on_meeting_started", event)
    new = demo.visible_messages()
    total = demo.messages_on_queue()
    attendees = demo.meetings.request_count("CreateAttendee")
    records = demo.calls.calls_for_meeting(demo.call(call_id).meeting_id)
    demo.check(
        "exactly_one",
        (len(new), total, attendees, len(records)) == (0, 1, 1, 1),
        f"{len(new)} new job(s); {total} queued in all; {attendees} CreateAttendee; {len(records)} call",
    )
    demo.summary["jobs_after_duplicate"] = total
    demo.summary["create_attendee_requests"] = attendees


def _ended(demo: _Demo, events: _Events, meeting_id: str, call_id: str, job: DialRequest) -> None:
    say = demo.narrator.say
    demo.chime.delete_meeting(MeetingId=meeting_id)
    event = events.eventbridge(MEETING_ENDED, meeting_id, demo.meetings.store.account)
    say("7. DeleteMeeting (boto3) -> chime:MeetingEnded -> on_meeting_ended")
    demo.invoke("on_meeting_ended", event)
    record = demo.call(call_id)
    say(f"   call {call_id}: state={record.state} desired={record.desired} end_reason={record.end_reason}")
    demo.check(
        "hung_up",
        (record.desired, record.state, record.end_reason) == ("ended", "ended", "meeting_ended"),
        "desired state ended; a call no worker held yet is ended at once",
    )
    deletes = demo.meetings.request_count("DeleteAttendee")
    try:
        demo.chime.get_attendee(MeetingId=meeting_id, AttendeeId=job.attendee_id)
        gone = False
    except demo.chime.exceptions.NotFoundException:
        gone = True
    token_dead = demo.meetings.is_token_valid(job.join_token.get_secret_value()) is None
    demo.check(
        "attendee_deleted",
        deletes == 1 and gone and token_dead,
        f"DeleteAttendee sent ({deletes}); GetAttendee: NotFound; the join token admits nobody now",
    )
    demo.summary["call_after_end"] = {
        "state": record.state,
        "desired": record.desired,
        "reason": record.end_reason,
    }
    demo.summary["delete_attendee_requests"] = deletes


def run_demo(
    out: TextIO = sys.stdout,
    *,
    as_json: bool = False,
    show_logs: bool = False,
    err: TextIO = sys.stderr,
    store: MeetingsStore | None = None,
) -> int:
    """Run every step; print the narrative (or a JSON summary with ``as_json``). Returns the exit status."""
    narrator = _Narrator(out, quiet=as_json)
    handler_log = io.StringIO()
    summary: dict[str, Any] = {"stage": DEMO_STAGE}
    checks: list[dict[str, Any]] = []
    failure: str | None = None
    try:
        _run_steps(narrator, handler_log, summary, checks, store)
    except DemoFailed as exc:
        failure = str(exc)
    log_text = handler_log.getvalue()
    leaked_in_logs = any(secret in log_text for secret in narrator.secrets)
    if show_logs and not leaked_in_logs:
        err.write(log_text)
    clean = not leaked_in_logs and not narrator.leaked and bool(narrator.secrets)
    checks.append({"name": "token_never_printed", "ok": clean, "detail": "join token absent from all output"})
    narrator.say(
        f"8. Handler output: {len(log_text.splitlines())} log/metric lines, join token in none: {clean}"
    )
    ok = failure is None and all(c["ok"] for c in checks)
    summary.update(ok=ok, checks=checks, handler_output_lines=len(log_text.splitlines()))
    if failure is not None:
        summary["error"] = failure
    if as_json:
        text = json.dumps(summary, indent=2, sort_keys=True)
        if any(secret in text for secret in narrator.secrets):  # cannot happen: the job is redacted
            raise DemoFailed("refusing to print a summary that contains the join token")
        print(text, file=out, flush=True)
    else:
        narrator.say("All checks held." if ok else "The demo did NOT behave as expected.")
    if not ok:
        failed = [c["name"] for c in checks if not c["ok"]] + ([failure] if failure else [])
        print(f"demo failed: {', '.join(failed)}", file=err, flush=True)
    return 0 if ok else 1


def _run_steps(
    narrator: _Narrator,
    handler_log: io.StringIO,
    summary: dict[str, Any],
    checks: list[dict[str, Any]],
    store: MeetingsStore | None,
) -> None:
    events = _Events()
    template = load_template()
    with MeetingsEmulator("127.0.0.1", 0, store=store) as meetings, MotoServer() as moto:
        meetings.add_listener(events)
        environment = {**aws_environment(moto.url, meetings.url), "DIAL_PLAN": json.dumps(DEMO_DIAL_PLAN)}
        with patched_environ(environment):
            sqs, dynamodb = boto3.client("sqs"), boto3.client("dynamodb")
            local = create_resources(sqs, dynamodb, stage=DEMO_STAGE, template=template)
            narrator.say(
                f"1. Meetings API emulator {meetings.url}; moto (SQS, DynamoDB, EventBridge) {moto.url}"
            )
            narrator.say(
                f"   from deploy/merge-template.json: table {local.table_name}, queue {local.queue_url}"
            )
            summary["endpoints"] = {"meetings": meetings.url, "moto": moto.url}
            with (
                patched_environ({"CALLS_TABLE": local.table_name, "DIAL_QUEUE_URL": local.queue_url}),
                Client(app_module.app, stage_name=DEMO_STAGE, project_dir=str(REPO_ROOT)) as lambdas,
            ):
                chime = boto3.client("chime-sdk-meetings", config=Config(retries={"total_max_attempts": 1}))
                demo = _Demo(
                    narrator,
                    meetings,
                    chime,
                    sqs,
                    CallRegistry(dynamodb, local.table_name, clock=_no_writes),
                    local.queue_url,
                    lambdas,
                    handler_log,
                    checks,
                    summary,
                )
                meeting_id, call_id, job, event = _started(demo, events)
                summary.update(meeting_id=meeting_id, call_id=call_id, jobs_enqueued=1, job=job.redacted())
                _duplicate(demo, event, call_id)
                _ended(demo, events, meeting_id, call_id, job)
            meetings.remove_listener(events)


def _no_writes() -> float:
    # The demo only reads call records; a clock is needed for writes alone.
    raise DemoFailed("the demo must not write call records")


def run(args: argparse.Namespace) -> int:
    return run_demo(sys.stdout, as_json=bool(args.json), show_logs=bool(args.show_logs))
