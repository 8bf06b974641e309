"""A small HTTP/1.1 endpoint for the container's health checks and for operators.

- ``GET /healthz``: 200 while the process and its event loop are alive (the ECS container health check; a
  full or draining worker is still healthy and must not be replaced).
- ``GET /readyz``: 200 when the worker is polling for jobs with capacity left, otherwise 503; the body says
  why.
- ``GET /calls``: the live calls as a JSON list of snapshots (labels, states, codecs, counters; no secrets).

One request per connection (``Connection: close``); requests are size- and time-bounded so a stuck or
hostile client cannot hold the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Final, Protocol

__all__ = ["HealthServer", "WorkerStatus"]

_MAX_HEAD_BYTES: Final = 8192
_READ_TIMEOUT_S: Final = 5.0
_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


class WorkerStatus(Protocol):
    """What the health server reports on (the supervisor implements it)."""

    def is_ready(self) -> bool: ...

    def status(self) -> dict[str, Any]: ...

    def call_snapshots(self) -> list[dict[str, Any]]: ...


class HealthServer:
    """``async with HealthServer(status, host, port) as server:`` serves until the block ends."""

    def __init__(self, status: WorkerStatus, host: str, port: int) -> None:
        self._status = status
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the health server is not running")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port, limit=_MAX_HEAD_BYTES)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def respond(self, method: str, path: str) -> tuple[int, Any]:
        """Route one request: (status code, JSON body)."""
        if path not in ("/healthz", "/readyz", "/calls"):
            return 404, {"error": "not found"}
        if method not in ("GET", "HEAD"):
            return 405, {"error": "method not allowed"}
        if path == "/healthz":
            return 200, {"status": "ok"}
        if path == "/readyz":
            ready = self._status.is_ready()
            return (200 if ready else 503), {"ready": ready, **self._status.status()}
        return 200, self._status.call_snapshots()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_S)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            status, body, method = self._route(head)
            payload = json.dumps(body, separators=(",", ":"), default=str).encode()
            head_out = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n"
                "Cache-Control: no-store\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head_out.encode() + (b"" if method == "HEAD" else payload))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _route(self, head: bytes) -> tuple[int, Any, str]:
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return 400, {"error": "malformed request line"}, "GET"
        method, target = parts[0], parts[1]
        path = target.split("?", 1)[0]
        status, body = self.respond(method, path)
        return status, body, method
