"""The dial queue: where the control plane puts ``DialRequest`` jobs for the media workers.

The message body is ``DialRequest.to_json()`` (it carries the join token, so it is never logged here); the
message attributes ``call_id``, ``meeting_id`` and ``attempt`` let consumers and operators see what a message
is without opening the body.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from chalicelib.contract import DialRequest
from chalicelib.dynamo import error_code
from chalicelib.errors import EnqueueFailed

__all__ = ["MAX_DELAY_S", "InMemoryJobQueue", "JobQueue", "QueuedJob", "SqsJobQueue", "message_attributes"]

#: SQS DelaySeconds upper bound.
MAX_DELAY_S: Final = 900


class JobQueue(Protocol):
    def enqueue(self, job: DialRequest, *, delay_s: int = 0) -> str:
        """Put one job on the queue; returns the message id. Raises ``EnqueueFailed``."""
        ...


def _check_delay(delay_s: int) -> int:
    if not 0 <= delay_s <= MAX_DELAY_S:
        raise ValueError(f"delay_s must be between 0 and {MAX_DELAY_S}")
    return delay_s


def message_attributes(job: DialRequest) -> dict[str, dict[str, str]]:
    return {
        "call_id": {"DataType": "String", "StringValue": job.call_id},
        "meeting_id": {"DataType": "String", "StringValue": job.meeting_id},
        "attempt": {"DataType": "Number", "StringValue": str(job.attempt)},
    }


class SqsJobQueue:
    """``JobQueue`` over an SQS standard queue (at-least-once delivery: the consumer claims conditionally)."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def enqueue(self, job: DialRequest, *, delay_s: int = 0) -> str:
        try:
            reply = self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=job.to_json(),
                DelaySeconds=_check_delay(delay_s),
                MessageAttributes=message_attributes(job),
            )
        except Exception as exc:
            code = error_code(exc)
            if code is None and not _is_botocore_error(exc):
                raise
            # Never chain: the botocore error holds the request, and the request holds the token.
            reason = code or type(exc).__name__
            raise EnqueueFailed(f"SendMessage for call {job.call_id} failed ({reason})") from None
        message_id: str = reply["MessageId"]
        return message_id


def _is_botocore_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("botocore")


@dataclass(frozen=True, slots=True)
class QueuedJob:
    message_id: str
    job: DialRequest = field(repr=False)
    delay_s: int
    attributes: dict[str, dict[str, str]]


class InMemoryJobQueue:
    """A real in-process ``JobQueue`` for tests: keeps every job in order; can be told to fail."""

    def __init__(self) -> None:
        self.jobs: list[QueuedJob] = []
        self.fail_next: int = 0

    def enqueue(self, job: DialRequest, *, delay_s: int = 0) -> str:
        _check_delay(delay_s)
        if self.fail_next > 0:
            self.fail_next -= 1
            raise EnqueueFailed(f"SendMessage for call {job.call_id} failed (injected)")
        # Round-trip through the wire form, exactly as a consumer would see it.
        received = DialRequest.from_json(job.to_json())
        message_id = str(uuid.uuid4())
        self.jobs.append(QueuedJob(message_id, received, delay_s, message_attributes(job)))
        return message_id
