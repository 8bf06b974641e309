"""The EventBridge patterns app.py registers, installed as moto rules: each event reaches exactly its rule."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from chalicelib.events import (
    ATTENDEE_EVENTS_PATTERN,
    KNOWN_EVENT_TYPES,
    MEETING_ENDED,
    MEETING_ENDED_PATTERN,
    MEETING_STARTED,
    MEETING_STARTED_PATTERN,
    parse_meeting_event,
)
from tests.app.conftest import REGION, AwsResources, meeting_event

MEETING_ID = "87654321-4321-4321-1234-111122223333"
ATTENDEE_ID = "11111111-2222-3333-4444-555555555555"
RULES = {
    "on_meeting_started": MEETING_STARTED_PATTERN,
    "on_meeting_ended": MEETING_ENDED_PATTERN,
    "on_attendee_event": ATTENDEE_EVENTS_PATTERN,
}


def _entry(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
    }


@pytest.fixture
def routed(aws: AwsResources) -> dict[str, list[dict[str, Any]]]:
    """Every documented eventType plus a wrong detail-type and a wrong source, routed by the three rules."""
    events = boto3.client("events", region_name=REGION)
    queues: dict[str, str] = {}
    for name, pattern in RULES.items():
        url = aws.sqs.create_queue(QueueName=f"rule-{name}")["QueueUrl"]
        arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(Name=name, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, Targets=[{"Id": "1", "Arn": arn}])
        queues[name] = url
    sent = []
    for i, event_type in enumerate(sorted(KNOWN_EVENT_TYPES)):
        attendee = {} if event_type in (MEETING_STARTED, MEETING_ENDED) else {"attendee_id": ATTENDEE_ID}
        sent.append(meeting_event(event_type, MEETING_ID, 1_000 + i, **attendee))
    stray = meeting_event(MEETING_STARTED, MEETING_ID, 1)
    sent.append({**stray, "detail-type": "Chime Media Pipeline State Change"})
    sent.append({**stray, "source": "aws.other"})
    for batch_start in range(0, len(sent), 10):
        reply = events.put_events(Entries=[_entry(e) for e in sent[batch_start : batch_start + 10]])
        assert reply["FailedEntryCount"] == 0
    received: dict[str, list[dict[str, Any]]] = {}
    for name, url in queues.items():
        bodies = []
        while batch := aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            bodies += [json.loads(m["Body"]) for m in batch]
        received[name] = bodies
    return received


def _types(bodies: list[dict[str, Any]]) -> list[str]:
    return sorted(b["detail"]["eventType"] for b in bodies)


def test_each_rule_gets_exactly_its_events(routed: dict[str, list[dict[str, Any]]]) -> None:
    assert _types(routed["on_meeting_started"]) == [MEETING_STARTED]
    assert _types(routed["on_meeting_ended"]) == [MEETING_ENDED]
    assert _types(routed["on_attendee_event"]) == [
        "chime:AttendeeAdded",
        "chime:AttendeeDeleted",
        "chime:AttendeeDropped",
        "chime:AttendeeJoined",
        "chime:AttendeeLeft",
    ]


def test_routed_events_parse(routed: dict[str, list[dict[str, Any]]]) -> None:
    # moto's EventBridge->SQS body has no "account": the parser must still accept it.
    for bodies in routed.values():
        for body in bodies:
            assert parse_meeting_event(body).meeting_id == MEETING_ID


def test_app_registers_these_patterns() -> None:
    import app as app_module

    registered = {
        e.name: e.event_pattern for e in app_module.app.event_sources if hasattr(e, "event_pattern")
    }
    assert registered == RULES
