"""Fixtures for the control-plane tests: moto (DynamoDB table + dial queue), the Meetings API emulator on
127.0.0.1, an injectable clock, and a Chalice test client whose handlers use them."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws
from moto.core.config import DefaultConfig

import app as app_module
from chalicelib import clients
from chalicelib import observability as obs
from chalicelib.call_registry import CallRegistry
from chalicelib.control import ControlPlane
from chalicelib.job_queue import JobQueue, SqsJobQueue
from chalicelib.meeting_registry import MeetingRegistry
from chalicelib.meetings import MeetingsClient
from chalicelib.settings import Settings
from chalicelib.wire_logging import quiet_wire_loggers
from emulator.meetings_api import ENDPOINT_ENV_VAR, MeetingsEmulator
from tests.aws_resources import create_calls_table

REGION = "us-east-1"
TABLE = "dialout-calls"
START = 1_714_564_800.0  # 2024-05-01T12:00:00Z
DIAL_PLAN = {
    "rules": [
        {
            "name": "sales",
            "match": {"external_meeting_id": "sales-*"},
            "targets": [
                {
                    "name": "vc1",
                    "host": "abc.voiceconnector.chime.aws",
                    "from_number": "+12065550100",
                    "humans_gone_grace_s": 120,
                }
            ],
        }
    ]
}


@dataclass
class FakeClock:
    now: float = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class AwsResources:
    dynamodb: Any
    sqs: Any
    queue_url: str
    dlq_url: str

    def receive_all(self) -> list[dict[str, Any]]:
        """Every message on the dial queue (each received once; none deleted)."""
        messages: list[dict[str, Any]] = []
        while True:
            reply = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            batch = reply.get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)

    def call_items(self) -> list[dict[str, Any]]:
        items = self.dynamodb.scan(TableName=TABLE)["Items"]
        return [i for i in items if i["pk"]["S"].startswith("CALL#")]


class SerializedClient:
    """Delegates to a boto3 client, one request at a time.

    DynamoDB makes each conditional write atomic; moto's in-process backend does not lock, so threads racing
    through it could interleave a condition check and its write. Serializing requests restores the service's
    per-request atomicity without changing any request or reply.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return call


@dataclass
class Harness:
    aws: AwsResources
    emulator: MeetingsEmulator
    clock: FakeClock
    sleeps: list[float] = field(default_factory=list)
    queue: JobQueue | None = None
    """When set, used instead of the SQS dial queue (e.g. an InMemoryJobQueue to observe delays)."""

    def plane(self, environ: Any = None) -> ControlPlane:
        import os

        quiet_wire_loggers()
        settings = Settings.from_env(environ if environ is not None else os.environ)
        dynamodb = SerializedClient(self.aws.dynamodb)
        return ControlPlane(
            settings=settings,
            meetings=MeetingsClient(clients.get_meetings_client(), sleep=self.sleeps.append),
            calls=CallRegistry(dynamodb, settings.calls_table, clock=self.clock),
            meeting_records=MeetingRegistry(dynamodb, settings.calls_table, clock=self.clock),
            queue=self.queue or SqsJobQueue(self.aws.sqs, settings.dial_queue_url),
            clock=self.clock,
        )

    def create_meeting(self, external_meeting_id: str = "sales-42") -> str:
        reply = self.emulator.store.create_meeting(
            {
                "ClientRequestToken": uuid.uuid4().hex,
                "MediaRegion": REGION,
                "ExternalMeetingId": external_meeting_id,
            }
        )
        meeting_id: str = reply["Meeting"]["MeetingId"]
        return meeting_id


@pytest.fixture(autouse=True)
def fresh_metrics() -> Iterator[None]:
    """Powertools keeps one metric set per process: start every test with an empty one."""
    obs.get_metrics().clear_metrics()
    yield
    obs.get_metrics().clear_metrics()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "CALLS_TABLE": TABLE,
        "DIAL_PLAN": json.dumps(DIAL_PLAN),
        "POWERTOOLS_SERVICE_NAME": "control-plane",
        "POWERTOOLS_METRICS_NAMESPACE": "ChimeDialout",
    }.items():
        monkeypatch.setenv(name, value)
    clients.reset_clients()
    yield
    clients.reset_clients()


def create_table(dynamodb: Any) -> None:
    create_calls_table(dynamodb, TABLE)


@pytest.fixture
def aws(env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsResources]:
    # The Meetings emulator listens on loopback: moto must let those requests through.
    passthrough: DefaultConfig = {
        "core": {"passthrough": {"urls": [r"http://127\.0\.0\.1:\d+/.*"], "services": []}}
    }
    with mock_aws(config=passthrough):
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_table(dynamodb)
        sqs = boto3.client("sqs", region_name=REGION)
        dlq_url = sqs.create_queue(QueueName="dialout-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queue_url = sqs.create_queue(
            QueueName="dialout",
            Attributes={
                "VisibilityTimeout": "360",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
            },
        )["QueueUrl"]
        monkeypatch.setenv("DIAL_QUEUE_URL", queue_url)
        yield AwsResources(dynamodb, sqs, queue_url, dlq_url)


@pytest.fixture
def emulator(env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[MeetingsEmulator]:
    with MeetingsEmulator("127.0.0.1", 0) as running:
        monkeypatch.setenv(ENDPOINT_ENV_VAR, running.url)
        clients.reset_clients()
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def harness(aws: AwsResources, emulator: MeetingsEmulator, clock: FakeClock) -> Harness:
    return Harness(aws, emulator, clock)


@pytest.fixture
def client(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setattr(app_module, "plane_factory", harness.plane)
    # A stage without its own environment: the dev stage would bring its own DIAL_PLAN.
    with Client(app_module.app, stage_name="test") as test_client:
        yield test_client


def meeting_event(
    event_type: str,
    meeting_id: str,
    timestamp_ms: int,
    *,
    external_meeting_id: str | None = "sales-42",
    attendee_id: str | None = None,
    external_user_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A "Chime Meeting State Change" event as EventBridge delivers it (string versions)."""
    detail: dict[str, Any] = {
        "version": "0",
        "eventType": event_type,
        "timestamp": timestamp_ms,
        "meetingId": meeting_id,
        "mediaRegion": REGION,
    }
    if attendee_id is not None:
        detail["attendeeId"] = attendee_id
        detail["externalUserId"] = external_user_id or "human-user"
        if event_type in ("chime:AttendeeJoined", "chime:AttendeeLeft", "chime:AttendeeDropped"):
            detail["networkType"] = "Voip"
    elif external_meeting_id is not None:
        detail["externalMeetingId"] = external_meeting_id
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "source": "aws.chime",
        "account": "111122223333",
        "region": REGION,
        "detail-type": "Chime Meeting State Change",
        "time": "2024-05-01T12:00:00Z",
        "resources": [],
        "detail": detail,
    }
