"""The demo's sandbox: every local stand-in started on 127.0.0.1 and wired as production is.

moto (SQS, DynamoDB, EventBridge) with the dial queue, its DLQ and the calls table created from the
deployment template; EventBridge rules with the app's own patterns; the Chime SDK Meetings emulator whose
events go onto the bus; the Voice Connector emulator (certificate for ``localhost``, its CA handed to the
worker); the Chalice handlers behind a local invoker; the worker as a subprocess.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import boto3
from botocore.config import Config
from chalice.test import Client

import app as app_module
from chalicelib.call_registry import CallRegistry
from emulator.demo_events import EventForwarder, EventRoute, HandlerInvoker, create_event_routes
from emulator.demo_watch import Console, Monitor, VcMilestones
from emulator.demo_worker import WorkerProcess, free_tcp_port, worker_environment
from emulator.local_aws import (
    LOCAL_REGION,
    LocalResources,
    MotoServer,
    aws_environment,
    create_resources,
    load_template,
    patched_environ,
)
from emulator.meetings_api import MeetingsEmulator
from emulator.meetings_store import MeetingsStore
from emulator.vc_thread import VoiceConnectorThread

__all__ = [
    "DEMO_STAGE",
    "SWEEP_EVERY_S",
    "VC_HOST",
    "WORKER_TONE_HZ",
    "Sandbox",
    "TokenKeepingStore",
    "demo_dial_plan",
    "open_sandbox",
]

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
#: Not a stage in .chalice/config.json: only its top-level environment applies; DIAL_PLAN comes from here.
DEMO_STAGE: Final = "local"
#: The Voice Connector emulator's certificate name; the OS resolver maps it to loopback everywhere.
VC_HOST: Final = "localhost"
WORKER_TONE_HZ: Final = 440.0
SWEEP_EVERY_S: Final = 1.0
HUMANS_GONE_GRACE_S: Final = 3.0
_WORKER_RTP_PORTS: Final = (41000, 41199)


class TokenKeepingStore(MeetingsStore):
    """Keeps every join token it issues, so the demo can prove none of them was printed or written."""

    def __init__(self, tokens: list[str]) -> None:
        super().__init__(region=LOCAL_REGION)
        self.tokens = tokens

    def create_attendee(self, meeting_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
        reply = super().create_attendee(meeting_id, request)
        self.tokens.append(reply["Attendee"]["JoinToken"])
        return reply


def demo_dial_plan(vc_port: int) -> dict[str, Any]:
    """sales-* and support-* meetings get a participant that plays a tone; anything else gets none."""

    def target(grace_s: float) -> dict[str, Any]:
        return {
            "name": "vc1",
            "host": VC_HOST,
            "port": vc_port,
            "from_number": "+12065550100",
            "media_app": "tone",
            "media_options": {"frequency": WORKER_TONE_HZ},
            "humans_gone_grace_s": grace_s,
        }

    return {
        "rules": [
            {"name": "sales", "match": {"external_meeting_id": "sales-*"}, "targets": [target(120.0)]},
            {
                "name": "support",
                "match": {"external_meeting_id": "support-*"},
                "targets": [target(HUMANS_GONE_GRACE_S)],
            },
        ]
    }


@dataclass
class Sandbox:
    """Handles on every running piece (see ``open_sandbox``)."""

    console: Console
    started: float
    workdir: Path
    moto_url: str
    meetings: MeetingsEmulator
    store: TokenKeepingStore
    vc: VoiceConnectorThread
    resources: LocalResources
    routes: list[EventRoute]
    forwarder: EventForwarder
    invoker: HandlerInvoker
    worker: WorkerProcess
    registry: CallRegistry
    monitor: Monitor
    milestones: VcMilestones
    chime: Any
    sqs: Any
    dynamodb: Any
    events: Any
    dial_plan: dict[str, Any]
    handler_log: io.StringIO
    control_env: dict[str, str] = field(default_factory=dict)

    @property
    def tokens(self) -> list[str]:
        return self.store.tokens

    def vc_recording(self, sip_call_id: str) -> bytes:
        return self.vc.call_soon(lambda: self.vc.emulator.call(sip_call_id).recording)

    def vc_summary(self, sip_call_id: str) -> dict[str, Any] | None:
        return next((c for c in self.vc.calls() if c["call_id"] == sip_call_id), None)

    def dial_queue_depth(self) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        reply = self.sqs.get_queue_attributes(QueueUrl=self.resources.queue_url, AttributeNames=names)
        return sum(int(reply["Attributes"][name]) for name in names)


@contextlib.contextmanager
def open_sandbox(console: Console) -> Iterator[Sandbox]:
    """Start everything; stop everything (in reverse) when the block ends."""
    started = time.time()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chime-dialout-demo-")))
        store = TokenKeepingStore(console.secrets)
        meetings = stack.enter_context(MeetingsEmulator("127.0.0.1", 0, store=store))
        moto = stack.enter_context(MotoServer())
        vc = VoiceConnectorThread(server_name=VC_HOST, meetings=meetings, workdir=workdir / "vc")
        stack.callback(vc.stop)
        vc.start()
        plan = demo_dial_plan(vc.port)
        stack.enter_context(patched_environ({**aws_environment(moto.url, meetings.url), "DIAL_PLAN": ""}))
        sqs, dynamodb, events = boto3.client("sqs"), boto3.client("dynamodb"), boto3.client("events")
        resources = create_resources(sqs, dynamodb, stage=DEMO_STAGE, template=load_template())
        routes = create_event_routes(app_module.app, events, sqs, prefix=f"chime-dialout-{DEMO_STAGE}")
        control_env = {
            "CALLS_TABLE": resources.table_name,
            "DIAL_QUEUE_URL": resources.queue_url,
            "DIAL_PLAN": json.dumps(plan),
        }
        stack.enter_context(patched_environ(control_env))
        lambdas = stack.enter_context(
            Client(app_module.app, stage_name=DEMO_STAGE, project_dir=str(REPO_ROOT))
        )
        handler_log = io.StringIO()
        invoker = HandlerInvoker(
            lambdas, sqs, routes, sweeper="sweep_calls", sweep_every_s=SWEEP_EVERY_S, log=handler_log
        )
        stack.callback(invoker.stop)
        invoker.start()
        forwarder = EventForwarder(events)
        meetings.add_listener(forwarder)
        stack.callback(meetings.remove_listener, forwarder)
        worker = stack.enter_context(
            WorkerProcess(
                worker_environment(
                    moto_url=moto.url,
                    queue_url=resources.queue_url,
                    table=resources.table_name,
                    ca_file=vc.ca_file,
                    health_port=free_tcp_port(),
                    rtp_ports=_WORKER_RTP_PORTS,
                ),
                workdir / "worker.log",
            )
        )
        worker.start()
        registry = CallRegistry(dynamodb, resources.table_name, clock=time.time)
        milestones = VcMilestones()
        milestones.start(vc)
        stack.callback(milestones.stop)
        monitor = Monitor(console, registry, worker.calls, vc, started=started)
        monitor.start()
        stack.callback(monitor.stop)
        chime = boto3.client("chime-sdk-meetings", config=Config(retries={"total_max_attempts": 1}))
        yield Sandbox(
            console=console,
            started=started,
            workdir=workdir,
            moto_url=moto.url,
            meetings=meetings,
            store=store,
            vc=vc,
            resources=resources,
            routes=routes,
            forwarder=forwarder,
            invoker=invoker,
            worker=worker,
            registry=registry,
            monitor=monitor,
            milestones=milestones,
            chime=chime,
            sqs=sqs,
            dynamodb=dynamodb,
            events=events,
            dial_plan=plan,
            handler_log=handler_log,
            control_env=control_env,
        )
