"""HTTP transport of the meetings emulator: a threaded stdlib server that turns requests into ``Request``
values for an application object and writes its ``Reply`` back, with AWS rest-json error encoding.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol

from emulator.meetings_validation import MeetingsApiError, require_object

__all__ = ["JsonHttpServer", "Reply", "Request", "RequestHandler", "error_reply", "json_object"]

MAX_BODY_BYTES: Final = 1 << 20
DEFAULT_RETRY_AFTER: Final = 1  # seconds; ServiceUnavailableException always carries Retry-After

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request as the application sees it."""

    method: str
    target: str
    """Path and query exactly as sent (percent-encoded)."""
    authorization: str | None = field(repr=False)
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP response: status, JSON body (``None`` for an empty body) and extra headers."""

    status: int
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class RequestHandler(Protocol):
    def handle_request(self, request: Request) -> Reply:
        """Answer one request; may raise ``MeetingsApiError``, which becomes an error reply."""
        ...


def error_reply(error: MeetingsApiError) -> Reply:
    """The rest-json error encoding botocore maps to modeled exceptions: ``x-amzn-ErrorType`` + ``Code``."""
    headers = {"x-amzn-ErrorType": error.code}
    retry_after = error.retry_after
    if retry_after is None and error.code == "ServiceUnavailableException":
        retry_after = DEFAULT_RETRY_AFTER
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Reply(error.status, {"Code": error.code, "Message": error.message}, headers)


def json_object(body: bytes) -> Mapping[str, Any]:
    """A request body as a JSON object; an empty body is ``{}``."""
    if not body:
        return {}
    try:
        decoded = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MeetingsApiError("BadRequestException", "The request body is not valid JSON.") from error
    return require_object(decoded)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    server_version = "chime-sdk-meetings-emulator"
    disable_nagle_algorithm = True  # headers and body are separate writes; don't let them wait for an ACK
    timeout = 60  # idle keep-alive connections close on their own
    server: JsonHttpServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _read_body(self) -> bytes:
        declared = self.headers.get("Content-Length") or "0"
        if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would desynchronise the connection
            raise MeetingsApiError(
                "BadRequestException", "Content-Length is missing, malformed or too large."
            )
        length = int(declared)
        return self.rfile.read(length) if length else b""

    def _handle(self, method: str) -> None:
        try:
            request = Request(method, self.path, self.headers.get("Authorization"), self._read_body())
            reply = self.server.app.handle_request(request)
        except MeetingsApiError as error:
            reply = error_reply(error)
        except Exception:
            _log.exception("emulator failed on %s %s", method, self.path.partition("?")[0])
            reply = error_reply(
                MeetingsApiError("ServiceFailureException", "The emulator failed internally.")
            )
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if reply.body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class JsonHttpServer(ThreadingHTTPServer):
    """A thread per connection; ``close_connections()`` ends idle keep-alive connections on shutdown."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: RequestHandler) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections so they exit."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                connection.shutdown(socket.SHUT_RDWR)
