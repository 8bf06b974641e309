"""moto (in-process) SQS queue + DynamoDB call table, seeded call records, and a supervisor wired to fakes."""

from __future__ import annotations

import io
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger, Metrics
from moto import mock_aws

from chalicelib.call_registry import CallRecord, CallRegistry
from chalicelib.contract import DialRequest, DialTarget
from media_worker.dial_pacer import DialPacer
from media_worker.dial_queue import DialQueueConsumer
from media_worker.metrics import DEFAULT_NAMESPACE, DEFAULT_SERVICE, WorkerMetrics
from media_worker.redial import RedialPolicy
from media_worker.supervisor import Supervisor, SupervisorConfig
from tests.aws_resources import create_calls_table
from tests.worker.supervisor.fake_calls import FakeCallFactory, FakeTime, Watch

REGION = "us-east-1"
TABLE = "dialout-calls"
JOIN_TOKEN = "SECRET-join-token+abc/xyz=="
"""Planted in every job: it must never show up in a log line, a metric or /calls."""


class WatchedClient:
    """Serializes requests to a moto-backed boto3 client and reports each one to the watch.

    DynamoDB makes each conditional write atomic; moto's in-process backend does not lock, so the worker's
    threads could interleave a condition check and its write. ``before`` hooks run under the same lock.
    """

    def __init__(self, client: Any, watch: Watch | None, lock: threading.Lock | None = None) -> None:
        self._client = client
        self._watch = watch
        self._lock = lock or threading.Lock()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.before: dict[str, Callable[[dict[str, Any]], None]] = {}

    def quiet(self) -> WatchedClient:
        """The same client and lock, for the test's own reads: neither recorded nor reported."""
        return WatchedClient(self._client, None, self._lock)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            with self._lock:
                if self._watch is None:
                    return method(**kwargs)
                self.calls.append((name, kwargs))
                hook = self.before.get(name)
                if hook is not None:
                    hook(kwargs)
                try:
                    return method(**kwargs)
                finally:
                    self._watch.changed()

        return call

    def count(self, name: str) -> int:
        return sum(1 for called, _ in self.calls if called == name)


def create_table(dynamodb: Any) -> None:
    create_calls_table(dynamodb, TABLE)


@dataclass
class World:
    sqs: Any
    dynamodb: Any
    queue_url: str
    watch: Watch = field(default_factory=Watch)
    time: FakeTime = field(default_factory=FakeTime)
    logs: io.StringIO = field(default_factory=io.StringIO)
    config: SupervisorConfig = field(
        default_factory=lambda: SupervisorConfig(
            worker_id="worker-a",
            max_calls=4,
            lease_s=30.0,
            heartbeat_s=5.0,
            drain_timeout_s=5.0,
            max_redials=2,
        )
    )
    factory: FakeCallFactory = field(init=False)
    watched_sqs: WatchedClient = field(init=False)
    watched_dynamodb: WatchedClient = field(init=False)
    registry: CallRegistry = field(init=False)
    """The worker's registry (its requests are recorded and wake waiters)."""
    quiet_registry: CallRegistry = field(init=False)
    """For the test's own reads and writes."""
    _hosts: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.time.watch = self.watch
        self.factory = FakeCallFactory(self.watch)
        self.watched_sqs = WatchedClient(self.sqs, self.watch)
        self.watched_dynamodb = WatchedClient(self.dynamodb, self.watch)
        self.registry = CallRegistry(self.watched_dynamodb, TABLE, clock=time.time)
        self.quiet_registry = CallRegistry(self.watched_dynamodb.quiet(), TABLE, clock=time.time)

    def supervisor(self, **overrides: Any) -> Supervisor:
        config = replace(self.config, **overrides)
        logger = Logger(service=f"media-worker-test-{uuid.uuid4().hex[:8]}", stream=self.logs)
        return Supervisor(
            config=config,
            queue=DialQueueConsumer(self.watched_sqs, self.queue_url, visibility_s=30, wait_s=0),
            registry=self.registry,
            make_call=self.factory,
            metrics=WorkerMetrics(),
            logger=logger,
            clock=self.time,
            sleep=self.time.sleep,
            pacer=DialPacer(config.calls_per_second, clock=self.time, sleep=self.time.sleep),
            redial=RedialPolicy(config.max_redials, base_s=1.0, cap_s=30.0, jitter=lambda: 1.0),
        )

    def new_job(self, *, host: str | None = None, name: str = "vc1") -> DialRequest:
        """A queued call record with its attendee (as the control plane leaves it) and its job.

        Each job gets a host of its own unless ``host`` is given (dials to one host are paced)."""
        host = host or f"vc{next(self._hosts)}.example.test"
        meeting_id = str(uuid.uuid4())
        target = DialTarget(name=name, host=host, from_number="+12065550100")
        claim = self.quiet_registry.claim(
            meeting_id, target, grace_s=120, event_id="ev-1", media_region=REGION, external_meeting_id=None
        )
        assert claim.claim_id is not None
        job = DialRequest.model_validate(
            {
                "call_id": f"{meeting_id}:{name}",
                "meeting_id": meeting_id,
                "media_region": REGION,
                "attendee_id": str(uuid.uuid4()),
                "join_token": JOIN_TOKEN,
                "target": target.model_dump(),
                "requested_at": datetime.now(UTC),
                "event_id": "ev-1",
            }
        )
        attached = self.quiet_registry.attach_attendee(
            job.call_id, claim.claim_id, attendee_id=job.attendee_id, external_user_id="dialout#vc1", job=job
        )
        assert attached is not None
        return job

    def send(self, job: DialRequest | str) -> str:
        body = job if isinstance(job, str) else job.to_json()
        message_id: str = self.watched_sqs.quiet().send_message(QueueUrl=self.queue_url, MessageBody=body)[
            "MessageId"
        ]
        return message_id

    def record(self, call_id: str) -> CallRecord:
        record = self.quiet_registry.get(call_id)
        assert record is not None
        return record

    def queue_counts(self) -> tuple[int, int]:
        """(visible, in flight) messages on the dial queue."""
        attributes = self.watched_sqs.quiet().get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


@pytest.fixture(autouse=True)
def fresh_metrics() -> Iterator[None]:
    """Powertools keeps one metric set per process: start every test with an empty one."""
    Metrics(namespace=DEFAULT_NAMESPACE, service=DEFAULT_SERVICE).clear_metrics()
    yield
    Metrics(namespace=DEFAULT_NAMESPACE, service=DEFAULT_SERVICE).clear_metrics()


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_table(dynamodb)
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="dialout", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        yield World(sqs, dynamodb, queue_url)
