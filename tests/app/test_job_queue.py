"""The dial queue: DialRequest bodies with call_id/meeting_id/attempt attributes; no token in failures."""

from __future__ import annotations

import pytest

from chalicelib.contract import DialRequest
from chalicelib.errors import EnqueueFailed
from chalicelib.job_queue import InMemoryJobQueue, SqsJobQueue
from tests.app.conftest import AwsResources

TOKEN = "queue-test-token-Zq9+/x"


def _job(attempt: int = 1) -> DialRequest:
    return DialRequest.model_validate(
        {
            "call_id": "87654321-4321-4321-1234-111122223333:vc1",
            "attempt": attempt,
            "meeting_id": "87654321-4321-4321-1234-111122223333",
            "media_region": "us-east-1",
            "attendee_id": "11111111-2222-3333-4444-555555555555",
            "join_token": TOKEN,
            "target": {"name": "vc1", "host": "abc.voiceconnector.chime.aws", "from_number": "+12065550100"},
            "requested_at": "2024-05-01T12:00:00Z",
            "event_id": "e1",
        }
    )


def test_sqs_message_round_trips_with_attributes(aws: AwsResources) -> None:
    queue = SqsJobQueue(aws.sqs, aws.queue_url)
    message_id = queue.enqueue(_job(attempt=3))
    (message,) = aws.receive_all()
    assert message["MessageId"] == message_id
    assert DialRequest.from_json(message["Body"]) == _job(attempt=3)
    attrs = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attrs == {"call_id": _job().call_id, "meeting_id": _job().meeting_id, "attempt": "3"}
    assert TOKEN not in str(message["MessageAttributes"])


def test_sqs_failure_is_enqueue_failed_without_token(aws: AwsResources) -> None:
    queue = SqsJobQueue(aws.sqs, aws.queue_url + "-missing")
    with pytest.raises(EnqueueFailed) as caught:
        queue.enqueue(_job())
    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_delay_is_bounded(aws: AwsResources) -> None:
    with pytest.raises(ValueError, match="delay_s"):
        SqsJobQueue(aws.sqs, aws.queue_url).enqueue(_job(), delay_s=901)


def test_in_memory_queue_keeps_wire_form_and_can_fail() -> None:
    queue = InMemoryJobQueue()
    queue.enqueue(_job(), delay_s=5)
    assert queue.jobs[0].job == _job()
    assert queue.jobs[0].delay_s == 5
    assert TOKEN not in repr(queue.jobs[0])
    queue.fail_next = 1
    with pytest.raises(EnqueueFailed):
        queue.enqueue(_job())
    assert len(queue.jobs) == 1
