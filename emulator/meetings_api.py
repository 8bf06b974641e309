"""A local chime-sdk-meetings endpoint that the unmodified boto3 client talks to.

Speaks the service's rest-json wire format (API version 2021-07-15): the same paths, ``operation=`` query
discriminators, status codes, body shapes and error encoding (``x-amzn-ErrorType`` header plus a
``{"Code", "Message"}`` body), so botocore raises its modeled exceptions. Point a client at it with
``endpoint_url=emulator.url`` or the environment variable ``AWS_ENDPOINT_URL_CHIME_SDK_MEETINGS``.

SigV4 signatures are not verified, but an ``Authorization`` header must be present (boto3 always signs).

Paths under ``/_emulator/`` (never used by the real API) control the emulator from another process:
``POST /_emulator/faults`` ``{"operation", "error", "times"?, "retry_after"?}``, ``DELETE /_emulator/faults``,
``POST /_emulator/reset``, ``GET /_emulator/state``, ``POST /_emulator/clients``
``{"action": "join"|"leave"|"drop"|"end-meeting", "meetingId", "attendeeId"?, "networkType"?}``, and
``POST /_emulator/tokens/check`` ``{"JoinToken"}`` (-> ``{"MeetingId", "AttendeeId"}`` or 404).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from emulator.faults import FaultInjector
from emulator.meetings_events import MeetingEventListener
from emulator.meetings_http import JsonHttpServer, Reply, Request, json_object
from emulator.meetings_store import MeetingsStore
from emulator.meetings_validation import ERROR_STATUS, MeetingsApiError

__all__ = ["ENDPOINT_ENV_VAR", "OPERATIONS", "MeetingsEmulator"]

ENDPOINT_ENV_VAR: Final = "AWS_ENDPOINT_URL_CHIME_SDK_MEETINGS"
OPERATIONS: Final = (
    "BatchCreateAttendee",
    "CreateAttendee",
    "CreateMeeting",
    "DeleteAttendee",
    "DeleteMeeting",
    "GetAttendee",
    "GetMeeting",
    "ListAttendees",
)
_ADMIN_PREFIX: Final = "/_emulator/"
_SHUTDOWN_POLL_SECONDS: Final = 0.05  # how soon stop() is noticed by the accept loop


# (method, path segments after /meetings, ``operation=`` discriminator) -> operation, per the API model.
_ROUTES: Final[dict[tuple[str, int, str | None], str]] = {
    ("POST", 0, None): "CreateMeeting",
    ("GET", 1, None): "GetMeeting",
    ("DELETE", 1, None): "DeleteMeeting",
    ("POST", 2, None): "CreateAttendee",
    ("POST", 2, "batch-create"): "BatchCreateAttendee",
    ("GET", 2, None): "ListAttendees",
    ("GET", 3, None): "GetAttendee",
    ("DELETE", 3, None): "DeleteAttendee",
}


def _route(method: str, segments: list[str], query: Mapping[str, list[str]]) -> tuple[str, list[str]] | None:
    """``(operation, path parameters)`` for a request, or ``None`` when no operation matches."""
    if not segments or segments[0] != "meetings":
        return None
    rest = segments[1:]
    if len(rest) >= 2 and rest[1] != "attendees":
        return None
    operation = _ROUTES.get((method, len(rest), query.get("operation", [None])[0]))
    if operation is None:
        return None
    ids = [rest[0], *rest[2:]] if rest else []  # MeetingId, then AttendeeId when present
    return operation, ids


class MeetingsEmulator:
    """The chime-sdk-meetings HTTP endpoint on ``host:port`` (port 0 picks a free one), in a daemon thread.

    ``store`` holds the meetings (see ``MeetingsStore``); ``faults`` injects API errors per operation.
    Use as a context manager, or call ``start()`` and ``stop()``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        store: MeetingsStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.port = port
        self.store = store if store is not None else MeetingsStore(clock=clock)
        self.faults = FaultInjector(operations=OPERATIONS, errors=ERROR_STATUS)
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._server: JsonHttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> str:
        """Bind, serve in a background thread and return the endpoint URL."""
        if self._server is not None:
            raise RuntimeError("the meetings emulator is already running")
        self._server = JsonHttpServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL_SECONDS},
            name="meetings-emulator",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close every connection; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join()

    @property
    def url(self) -> str:
        """``http://host:port`` of the running endpoint."""
        if self._server is None:
            raise RuntimeError("the meetings emulator is not running; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> MeetingsEmulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- test and stand-in API ---------------------------------------------------------------------------

    def request_count(self, operation: str) -> int:
        """How many requests for ``operation`` reached the endpoint (failed and faulted ones included)."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; known: {list(OPERATIONS)}")
        with self._counts_lock:
            return self._counts[operation]

    def request_counts(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(sorted(self._counts.items()))

    def reset(self) -> None:
        """Forget meetings, tokens, pending faults and request counts."""
        self.store.reset()
        self.faults.clear()
        with self._counts_lock:
            self._counts.clear()

    def is_token_valid(self, token: str) -> tuple[str, str] | None:
        """``(meeting_id, attendee_id)`` for a live join token, else ``None``."""
        return self.store.is_token_valid(token)

    def add_listener(self, listener: MeetingEventListener) -> None:
        """Call ``listener(event_type, detail)`` on every meeting lifecycle event."""
        self.store.add_listener(listener)

    def remove_listener(self, listener: MeetingEventListener) -> None:
        self.store.remove_listener(listener)

    def join_attendee(self, meeting_id: str, attendee_id: str, network_type: str = "Voip") -> None:
        """Simulate a client connecting as the attendee (chime:AttendeeJoined)."""
        self.store.join_attendee(meeting_id, attendee_id, network_type)

    def leave_attendee(self, meeting_id: str, attendee_id: str) -> None:
        """Simulate the attendee's client hanging up (chime:AttendeeLeft)."""
        self.store.leave_attendee(meeting_id, attendee_id)

    def drop_attendee(self, meeting_id: str, attendee_id: str) -> None:
        """Simulate the attendee's client losing its connection (chime:AttendeeDropped)."""
        self.store.drop_attendee(meeting_id, attendee_id)

    def end_meeting(self, meeting_id: str) -> None:
        """End the meeting as auto-end does (chime:MeetingEnded; every join token dies)."""
        self.store.end_meeting(meeting_id)

    # -- request handling (called from handler threads) --------------------------------------------------

    def handle_request(self, request: Request) -> Reply:
        """Serve one HTTP request (called from the server's handler threads)."""
        parts = urlsplit(request.target)
        if parts.path.startswith(_ADMIN_PREFIX):
            return self._handle_admin(request.method, parts.path[len(_ADMIN_PREFIX) :], request.body)
        return self._handle_api(request.method, parts.path, parts.query, request.authorization, request.body)

    def _handle_api(
        self, method: str, path: str, query: str, authorization: str | None, body: bytes
    ) -> Reply:
        segments = [unquote(segment) for segment in path.strip("/").split("/")] if path.strip("/") else []
        params = parse_qs(query, keep_blank_values=True)
        routed = _route(method, segments, params)
        if routed is None:
            message = f"No chime-sdk-meetings operation matches {method} {path}."
            headers = {"x-amzn-ErrorType": "UnknownOperationException"}
            return Reply(404, {"Code": "UnknownOperationException", "Message": message}, headers)
        operation, ids = routed
        with self._counts_lock:
            self._counts[operation] += 1
        if not authorization and "X-Amz-Signature" not in params:
            raise MeetingsApiError("UnauthorizedException", "Missing Authentication Token.")
        fault = self.faults.take(operation)
        if fault is not None:
            raise MeetingsApiError(fault.error, f"Injected {fault.error}.", retry_after=fault.retry_after)
        return self._dispatch(operation, ids, params, body)

    def _dispatch(
        self, operation: str, ids: list[str], params: Mapping[str, list[str]], body: bytes
    ) -> Reply:
        store = self.store
        if operation == "CreateMeeting":
            return Reply(200, store.create_meeting(json_object(body)))
        if operation == "GetMeeting":
            return Reply(200, store.get_meeting(ids[0]))
        if operation == "DeleteMeeting":
            store.delete_meeting(ids[0])
            return Reply(204)
        if operation == "CreateAttendee":
            return Reply(200, store.create_attendee(ids[0], json_object(body)))
        if operation == "BatchCreateAttendee":
            return Reply(200, store.batch_create_attendee(ids[0], json_object(body)))
        if operation == "ListAttendees":
            next_token = params.get("next-token", [None])[0]
            return Reply(200, store.list_attendees(ids[0], next_token, params.get("max-results", [None])[0]))
        if operation == "GetAttendee":
            return Reply(200, store.get_attendee(ids[0], ids[1]))
        store.delete_attendee(ids[0], ids[1])  # DeleteAttendee, the only operation left
        return Reply(204)

    def _handle_admin(self, method: str, action: str, body: bytes) -> Reply:
        try:
            return self._admin(method, action, body)
        except ValueError as error:
            return Reply(400, {"message": str(error)})

    def _admin(self, method: str, action: str, body: bytes) -> Reply:
        if (method, action) == ("GET", "state"):
            state = self.store.snapshot()
            return Reply(
                200, {**state, "RequestCounts": self.request_counts(), "PendingFaults": self.faults.pending()}
            )
        if (method, action) == ("POST", "reset"):
            self.reset()
            return Reply(204)
        if (method, action) == ("DELETE", "faults"):
            self.faults.clear()
            return Reply(204)
        if (method, action) == ("POST", "faults"):
            request = json_object(body)
            self.faults.inject(
                str(request.get("operation")),
                str(request.get("error")),
                times=request.get("times", 1),
                retry_after=request.get("retry_after"),
            )
            return Reply(200, {"PendingFaults": self.faults.pending()})
        if (method, action) == ("POST", "clients"):
            return self._simulate_client(json_object(body))
        if (method, action) == ("POST", "tokens/check"):
            # For a Voice Connector emulator in another process; the token travels in the body, never a URL.
            owner = self.is_token_valid(str(json_object(body).get("JoinToken", "")))
            if owner is None:
                return Reply(404, {"message": "unknown or revoked join token"})
            return Reply(200, {"MeetingId": owner[0], "AttendeeId": owner[1]})
        return Reply(404, {"message": f"no emulator control at {method} {_ADMIN_PREFIX}{action}"})

    def _simulate_client(self, request: Mapping[str, Any]) -> Reply:
        action, meeting_id = request.get("action"), str(request.get("meetingId"))
        attendee_id = str(request.get("attendeeId"))
        if action == "join":
            self.store.join_attendee(meeting_id, attendee_id, str(request.get("networkType", "Voip")))
        elif action == "leave":
            self.store.leave_attendee(meeting_id, attendee_id)
        elif action == "drop":
            self.store.drop_attendee(meeting_id, attendee_id)
        elif action == "end-meeting":
            self.store.end_meeting(meeting_id)
        else:
            raise ValueError("action must be one of join, leave, drop, end-meeting")
        return Reply(204)
