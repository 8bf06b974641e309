"""/healthz, /readyz and /calls over a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest

from media_worker.health import HealthServer
from media_worker.supervisor import Supervisor
from tests.worker.supervisor.conftest import JOIN_TOKEN, World
from tests.worker.supervisor.fake_calls import SAFETY_TIMEOUT_S

pytestmark = pytest.mark.loopback


class StubStatus:
    def __init__(self, *, ready: bool) -> None:
        self.ready = ready

    def is_ready(self) -> bool:
        return self.ready

    def status(self) -> dict[str, Any]:
        return {"draining": not self.ready, "jobs": 1}

    def call_snapshots(self) -> list[dict[str, Any]]:
        return [{"call_id": "m:vc1", "state": "connected"}]


async def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw``, return everything the server answers before it closes (b"" when it just hangs up)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), SAFETY_TIMEOUT_S)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def request(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    response = await exchange(port, raw)
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split(" ")[1]), headers, body


async def get(port: int, path: str) -> tuple[int, Any]:
    status, headers, body = await request(port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body)
    return status, json.loads(body)


def test_healthz_readyz_and_calls() -> None:
    status = StubStatus(ready=True)

    async def main() -> None:
        async with HealthServer(status, "127.0.0.1", 0) as server:
            assert await get(server.port, "/healthz") == (200, {"status": "ok"})
            assert await get(server.port, "/readyz") == (200, {"ready": True, "draining": False, "jobs": 1})
            assert await get(server.port, "/calls") == (200, [{"call_id": "m:vc1", "state": "connected"}])
            status.ready = False
            assert (await get(server.port, "/readyz"))[0] == 503
            assert (await get(server.port, "/healthz"))[0] == 200  # full or draining is still alive

    asyncio.run(main())


def test_unknown_paths_methods_and_malformed_requests_are_refused() -> None:
    async def main() -> None:
        async with HealthServer(StubStatus(ready=True), "127.0.0.1", 0) as server:
            assert (await get(server.port, "/nope"))[0] == 404
            assert (await get(server.port, "/healthz?probe=1"))[0] == 200
            code, _, _ = await request(server.port, b"POST /calls HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            assert code == 405
            code, _, _ = await request(server.port, b"garbage\r\n\r\n")
            assert code == 400
            code, headers, body = await request(server.port, b"HEAD /healthz HTTP/1.1\r\n\r\n")
            assert (code, body) == (200, b"")
            assert int(headers["Content-Length"]) > 0
            # A client that sends an oversized head is cut off; the server keeps serving.
            assert await exchange(server.port, b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n") == b""
            assert (await get(server.port, "/healthz"))[0] == 200

    asyncio.run(main())


def test_calls_lists_live_calls_of_the_supervisor_without_secrets(world: World) -> None:
    job = world.new_job()
    world.send(job)
    supervisor = world.supervisor()

    async def main() -> None:
        running = asyncio.create_task(supervisor.run())
        async with HealthServer(supervisor, "127.0.0.1", 0) as server:
            await world.watch.until(lambda: world.record(job.call_id).state == "connected")
            status, _, body = await request(server.port, b"GET /calls HTTP/1.1\r\n\r\n")
            assert status == 200
            assert JOIN_TOKEN.encode() not in body
            (call,) = json.loads(body)
            assert (call["call_id"], call["state"], call["phase"]) == (job.call_id, "connected", "connected")
            ready = await get(server.port, "/readyz")
            assert ready[0] == 200
            assert ready[1]["active_calls"] == 1
            supervisor.drain()
            assert (await get(server.port, "/readyz"))[1]["draining"] is True
            await asyncio.wait_for(running, SAFETY_TIMEOUT_S)

    asyncio.run(main())


def test_readyz_is_unavailable_when_the_supervisor_is_full(world: World) -> None:
    world.send(world.new_job())
    supervisor: Supervisor = world.supervisor(max_calls=1)

    async def main() -> None:
        running = asyncio.create_task(supervisor.run())
        async with HealthServer(supervisor, "127.0.0.1", 0) as server:
            await world.watch.until(lambda: len(world.factory.connected()) == 1)
            status, body = await get(server.port, "/readyz")
            assert (status, body["ready"], body["jobs"], body["max_calls"]) == (503, False, 1, 1)
            supervisor.drain()
            await asyncio.wait_for(running, SAFETY_TIMEOUT_S)

    asyncio.run(main())
