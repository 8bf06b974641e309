"""Event delivery for the demo, as in production: meetings emulator -> EventBridge (moto) -> rule -> target.

The rules are made from the Chalice app's own event sources (``app.event_sources``: the very patterns the
handlers are registered with), one per handler, each with an SQS queue as its target. A local invoker
long-polls those queues and hands every delivered body to its handler through ``chalice.test.Client``, one
invocation at a time like a Lambda function with its own concurrency. The scheduled sweeper runs on a local
timer (faster than production's rate, which the caller reports).
"""

from __future__ import annotations

import functools
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from chalice.app import Chalice, CloudWatchEventConfig, ScheduledEventConfig
from chalice.test import Client

from emulator.local_aws import LOCAL_ACCOUNT, handler_output_to
from emulator.meetings_events import DETAIL_TYPE, EVENT_SOURCE

__all__ = [
    "EmittedEvent",
    "EventForwarder",
    "EventRoute",
    "HandlerInvoker",
    "create_event_routes",
    "schedule_of",
]

_POLL_WAIT_S: Final = 1  # SQS long poll; also how soon a stopping invoker notices


@dataclass(frozen=True, slots=True)
class EventRoute:
    """One EventBridge rule (the handler's pattern) and the SQS queue it delivers to."""

    handler: str
    rule_name: str
    pattern: dict[str, Any]
    queue_url: str


def create_event_routes(app: Chalice, events: Any, sqs: Any, *, prefix: str) -> list[EventRoute]:
    """A rule on the default bus per ``on_cw_event`` handler, with exactly its pattern and an SQS target."""
    routes = []
    for source in app.event_sources:
        if not isinstance(source, CloudWatchEventConfig):
            continue
        queue_url = sqs.create_queue(QueueName=f"{prefix}-{source.name}-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        rule_name = f"{prefix}-{source.name}"
        events.put_rule(Name=rule_name, EventPattern=json.dumps(source.event_pattern), State="ENABLED")
        events.put_targets(Rule=rule_name, Targets=[{"Id": "invoker", "Arn": arn["QueueArn"]}])
        routes.append(EventRoute(source.name, rule_name, source.event_pattern, queue_url))
    return routes


def schedule_of(app: Chalice, handler: str) -> str:
    """The schedule expression ``handler`` is registered with (e.g. ``rate(1 minute)``)."""
    for source in app.event_sources:
        if isinstance(source, ScheduledEventConfig) and source.name == handler:
            return str(source.schedule_expression)
    raise LookupError(f"{handler} is not a scheduled handler of the app")


@dataclass(frozen=True, slots=True)
class EmittedEvent:
    """A meeting event the emulator emitted and the demo put on the bus (wall-clock time)."""

    at: float
    event_type: str
    detail: dict[str, Any]


@dataclass
class EventForwarder:
    """A meetings-emulator listener that puts every lifecycle event on moto's default event bus."""

    events_client: Any
    clock: Callable[[], float] = time.time
    emitted: list[EmittedEvent] = field(default_factory=list)
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event_type: str, detail: dict[str, Any]) -> None:
        self.put(event_type, detail)

    def put(self, event_type: str, detail: dict[str, Any]) -> None:
        """PutEvents with the Chime source and detail-type; the bus and its rules do the routing."""
        entry = {"Source": EVENT_SOURCE, "DetailType": DETAIL_TYPE, "Detail": json.dumps(detail)}
        reply = self.events_client.put_events(Entries=[entry])
        with self.lock:
            self.emitted.append(EmittedEvent(self.clock(), event_type, dict(detail)))
            self.failures += int(reply.get("FailedEntryCount", 0))

    def find(self, event_type: str, **detail: str) -> list[EmittedEvent]:
        with self.lock:
            return [
                e
                for e in self.emitted
                if e.event_type == event_type and all(e.detail.get(k) == v for k, v in detail.items())
            ]


class HandlerInvoker:
    """Long-polls each route's queue and invokes its handler; runs the sweeper every ``sweep_every_s``."""

    def __init__(
        self,
        lambdas: Client,
        sqs: Any,
        routes: list[EventRoute],
        *,
        sweeper: str,
        sweep_every_s: float,
        log: io.StringIO,
    ) -> None:
        self._lambdas = lambdas
        self._sqs = sqs
        self._routes = routes
        self._sweeper = sweeper
        self._sweep_every_s = sweep_every_s
        self._log = log
        self._invoke_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._counts: Counter[str] = Counter()
        self._changed = threading.Condition()
        self.errors: list[str] = []

    def start(self) -> None:
        for route in self._routes:
            self._spawn(functools.partial(self._poll, route), f"invoker-{route.handler}")
        self._spawn(self._sweep, "invoker-schedule")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=_POLL_WAIT_S + 5)
        self._threads.clear()

    def count(self, handler: str) -> int:
        with self._changed:
            return self._counts[handler]

    def counts(self) -> dict[str, int]:
        with self._changed:
            return dict(sorted(self._counts.items()))

    def wait_for_count(self, handler: str, at_least: int, timeout_s: float) -> bool:
        """True once ``handler`` was invoked ``at_least`` times (False at the deadline)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._counts[handler] >= at_least, timeout_s)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _poll(self, route: EventRoute) -> None:
        while not self._stop.is_set():
            try:
                reply = self._sqs.receive_message(
                    QueueUrl=route.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=_POLL_WAIT_S
                )
            except Exception as exc:  # moto going away at shutdown, mostly: note it and stop
                if not self._stop.is_set():
                    self.errors.append(f"{route.handler}: receive failed: {type(exc).__name__}")
                return
            for message in reply.get("Messages", []):
                event = json.loads(message["Body"])
                # moto's SQS target leaves out ``account``, which EventBridge always sends and Chalice's
                # CloudWatchEvent wrapper requires: put back the account the bus belongs to.
                event.setdefault("account", LOCAL_ACCOUNT)
                if self._invoke(route.handler, event):
                    self._sqs.delete_message(QueueUrl=route.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _sweep(self) -> None:
        while not self._stop.wait(self._sweep_every_s):
            event = self._lambdas.events.generate_cw_event(
                source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
            )
            self._invoke(self._sweeper, event)

    def _invoke(self, handler: str, event: dict[str, Any]) -> bool:
        """Run the handler; a raised error leaves the message for redelivery, as Lambda's retry would."""
        ok = True
        with self._invoke_lock, handler_output_to(self._log):
            try:
                self._lambdas.lambda_.invoke(handler, event)
            except Exception as exc:
                ok = False
                self.errors.append(f"{handler}: {type(exc).__name__}")
        with self._changed:
            self._counts[handler] += 1
            self._changed.notify_all()
        return ok
