"""The SQS side of the worker against moto: receive, visibility, and an abandoned long poll."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from media_worker.dial_queue import DialQueueConsumer
from tests.worker.supervisor.conftest import World
from tests.worker.supervisor.fake_calls import SAFETY_TIMEOUT_S


class Spy:
    """Passes requests to the raw client, raising thread events as they start and end."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.started: dict[str, threading.Event] = {}
        self.done: dict[str, threading.Event] = {}

    def event(self, table: dict[str, threading.Event], name: str) -> threading.Event:
        return table.setdefault(name, threading.Event())

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            self.event(self.started, name).set()
            try:
                return method(**kwargs)
            finally:
                self.event(self.done, name).set()

        return call


def test_receive_reads_bodies_and_receive_counts_and_keeps_secrets_out_of_repr(world: World) -> None:
    world.send('{"secret": "body"}')
    consumer = DialQueueConsumer(world.sqs, world.queue_url, visibility_s=30, wait_s=0)

    async def main() -> None:
        (message,) = await consumer.receive(10)
        assert (message.body, message.receive_count) == ('{"secret": "body"}', 1)
        assert "secret" not in repr(message)
        assert message.receipt_handle not in repr(message)
        await consumer.set_visibility(message, 0)
        (again,) = await consumer.receive(10)
        assert again.receive_count == 2
        await consumer.delete(again)
        assert await consumer.receive(10) == []

    asyncio.run(main())


def test_an_abandoned_long_poll_hands_back_what_it_receives(world: World) -> None:
    spy = Spy(world.sqs)
    consumer = DialQueueConsumer(spy, world.queue_url, visibility_s=300, wait_s=5)

    async def main() -> None:
        polling = asyncio.create_task(consumer.receive(1))
        assert await asyncio.to_thread(spy.event(spy.started, "receive_message").wait, SAFETY_TIMEOUT_S)
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)
        world.sqs.send_message(QueueUrl=world.queue_url, MessageBody="{}")  # arrives during the poll
        released = spy.event(spy.done, "change_message_visibility")
        assert await asyncio.to_thread(released.wait, SAFETY_TIMEOUT_S)

    asyncio.run(main())
    assert polling_result_visible(world)


def polling_result_visible(world: World) -> bool:
    return world.queue_counts() == (1, 0)
