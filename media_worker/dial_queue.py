"""The worker's side of the SQS dial queue: receive, keep invisible, release, delete.

boto3 is blocking, so every request runs off the event loop. The long poll (up to 20 s) runs in a daemon
thread of its own rather than the default executor: on shutdown the process must not wait for a poll that
nobody needs any more. A poll abandoned that way makes whatever it still receives visible again itself (and
if the process is gone first, the messages reappear once their visibility timeout lapses). Short requests
(delete, change visibility) use ``asyncio.to_thread``.

Message bodies carry join tokens: ``ReceivedMessage`` keeps the body and the receipt handle out of its repr.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

__all__ = ["MAX_WAIT_S", "DialQueueConsumer", "ReceivedMessage"]

#: SQS bounds: WaitTimeSeconds 0..20, MaxNumberOfMessages 1..10, VisibilityTimeout 0..43200.
MAX_WAIT_S: Final = 20
_MAX_BATCH: Final = 10
_MAX_VISIBILITY_S: Final = 43_200

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str = field(repr=False)
    body: str = field(repr=False)
    receive_count: int = 1


class DialQueueConsumer:
    """``client`` is a boto3 SQS client; ``visibility_s`` is how long a received message stays invisible."""

    def __init__(
        self, client: Any, queue_url: str, *, visibility_s: int = 60, wait_s: int = MAX_WAIT_S
    ) -> None:
        if not 0 <= wait_s <= MAX_WAIT_S:
            raise ValueError(f"wait_s must be between 0 and {MAX_WAIT_S}")
        if not 1 <= visibility_s <= _MAX_VISIBILITY_S:
            raise ValueError(f"visibility_s must be between 1 and {_MAX_VISIBILITY_S}")
        self._client = client
        self._queue_url = queue_url
        self.visibility_s = visibility_s
        self.wait_s = wait_s

    async def receive(self, max_messages: int) -> list[ReceivedMessage]:
        """One (long) poll for up to ``max_messages`` (capped at 10) messages."""
        count = max(1, min(_MAX_BATCH, max_messages))
        abandoned = threading.Event()

        def poll() -> dict[str, Any]:
            reply: dict[str, Any] = self._client.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=count,
                WaitTimeSeconds=self.wait_s,
                VisibilityTimeout=self.visibility_s,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
            if abandoned.is_set():  # nobody will take these jobs: hand them back from this thread
                for message in reply.get("Messages", []):
                    self._client.change_message_visibility(
                        QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
            return reply

        try:
            reply = await _in_daemon_thread(poll)
        except asyncio.CancelledError:
            abandoned.set()
            raise
        return [
            ReceivedMessage(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m["Body"],
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
            )
            for m in reply.get("Messages", [])
        ]

    async def delete(self, message: ReceivedMessage) -> None:
        await asyncio.to_thread(
            self._client.delete_message, QueueUrl=self._queue_url, ReceiptHandle=message.receipt_handle
        )

    async def set_visibility(self, message: ReceivedMessage, seconds: int) -> None:
        """``seconds=0`` makes the message visible again at once (hand it to another worker)."""
        await asyncio.to_thread(
            self._client.change_message_visibility,
            QueueUrl=self._queue_url,
            ReceiptHandle=message.receipt_handle,
            VisibilityTimeout=max(0, min(_MAX_VISIBILITY_S, seconds)),
        )


async def _in_daemon_thread(work: Callable[[], T]) -> T:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def run() -> None:
        try:
            result = work()
        except BaseException as exc:  # handed to the awaiting coroutine, which decides
            error = exc
            try:
                loop.call_soon_threadsafe(settle, lambda: future.set_exception(error))
            except RuntimeError:  # the loop closed while the poll ran: nobody is waiting any more
                return
        else:
            try:
                loop.call_soon_threadsafe(settle, lambda: future.set_result(result))
            except RuntimeError:  # the loop closed while the poll ran: nobody is waiting any more
                return

    threading.Thread(target=run, name="sqs-receive", daemon=True).start()
    return await future
