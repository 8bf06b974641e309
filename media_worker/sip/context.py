"""Configuration, and the machinery under :class:`SipConnection`: identifiers, output, events, transactions.

The call modules (``uac``, ``uas``, ``in_dialog_*``) work on a :class:`SipContext`; the connection owns it.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from media_worker.sip.calls import Call
from media_worker.sip.events import SipEvent
from media_worker.sip.exceptions import LocalProtocolError
from media_worker.sip.message import NameAddr, SipRequest, SipResponse, Via, build_response
from media_worker.sip.redaction import redact_uri
from media_worker.sip.session_timer import DEFAULT_MIN_SE, DEFAULT_SESSION_EXPIRES, MINIMUM_MIN_SE, Refresher
from media_worker.sip.transaction import (
    T1,
    T2,
    ClientKey,
    ClientTransaction,
    ResponseHandler,
    ServerKey,
    ServerTransaction,
    TimeoutHandler,
)
from media_worker.sip.uri import SipUri

__all__ = ["DEFAULT_ALLOW", "SipConfiguration", "SipContext", "TraceEntry"]

DEFAULT_ALLOW = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO")


@dataclass(frozen=True, slots=True, kw_only=True)
class SipConfiguration:
    """How this user agent presents itself on one connection."""

    via_host: str
    """The sent-by host of our Via (our address as we know it; the peer corrects it with received/rport)."""
    via_port: int | None = None
    contact: SipUri
    """Our Contact URI, e.g. ``sip:12065550100@192.0.2.10:5061;transport=tls``."""
    transport: str = "TLS"
    user_agent: str | None = "chime-dialout"
    session_expires: int = DEFAULT_SESSION_EXPIRES
    """RFC 4028 Session-Expires we offer and accept, seconds."""
    min_se: int = DEFAULT_MIN_SE
    """RFC 4028 Min-SE: the smallest session interval we accept (422 below it)."""
    preferred_refresher: Refresher = "uac"
    """Who refreshes when an INVITE we answer leaves it open (RFC 4028 §9)."""
    allow: tuple[str, ...] = DEFAULT_ALLOW
    supported: tuple[str, ...] = ("timer",)
    accept: tuple[str, ...] = ("application/sdp",)
    t1: float = T1
    t2: float = T2

    def __post_init__(self) -> None:
        if self.min_se < MINIMUM_MIN_SE or self.session_expires < self.min_se:
            raise LocalProtocolError("need 90 <= min_se <= session_expires (RFC 4028 §4, §5)")


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One message that crossed the connection: first line only, join tokens redacted."""

    direction: str  # "sent" or "received"
    call_id: str | None
    summary: str


@dataclass(slots=True)
class SipContext:
    """What the call modules share: configuration, randomness, the output buffer, events, transactions."""

    config: SipConfiguration
    urandom: Callable[[int], bytes] = os.urandom
    outbox: bytearray = field(default_factory=bytearray)
    events: deque[SipEvent] = field(default_factory=deque)
    client_txs: dict[ClientKey, ClientTransaction] = field(default_factory=dict)
    server_txs: dict[ServerKey, ServerTransaction] = field(default_factory=dict)
    calls: dict[str, Call] = field(default_factory=dict)
    trace: deque[TraceEntry] = field(default_factory=lambda: deque(maxlen=256))
    _request_ids: int = 0

    # -- identifiers (RFC 3261 §8.1.1.4 Call-ID, §19.3 tags, §8.1.1.7 branch) --

    def token(self, nbytes: int) -> str:
        return self.urandom(nbytes).hex()

    def new_branch(self) -> str:
        return "z9hG4bK" + self.token(12)

    def new_tag(self) -> str:
        return self.token(8)

    def new_call_id(self) -> str:
        return str(uuid.UUID(bytes=self.urandom(16), version=4))

    def initial_seq(self) -> int:
        """A random first CSeq, far below 2**31 so a long dialog never runs out (§8.1.1.5)."""
        return int.from_bytes(self.urandom(2), "big") + 1

    def next_request_id(self) -> int:
        self._request_ids += 1
        return self._request_ids

    def random_delay(self, low: float, high: float) -> float:
        """A delay in [low, high] with 10 ms granularity (RFC 3261 §14.1)."""
        steps = round((high - low) * 100)
        return low + (int.from_bytes(self.urandom(2), "big") % (steps + 1)) / 100

    # -- header values --

    def via(self, branch: str) -> str:
        params: tuple[tuple[str, str | None], ...] = (("rport", None), ("branch", branch))
        return str(Via(self.config.transport, self.config.via_host, self.config.via_port, params))

    def contact(self) -> str:
        return str(NameAddr(self.config.contact))

    def capability_headers(self) -> list[tuple[str, str]]:
        """Allow and Supported, as every INVITE, UPDATE, OPTIONS and their 2xx carry (§20.5, §20.37)."""
        headers = [("Allow", ", ".join(self.config.allow))]
        if self.config.supported:
            headers.append(("Supported", ", ".join(self.config.supported)))
        return headers

    def user_agent(self, *, server: bool) -> list[tuple[str, str]]:
        if self.config.user_agent is None:
            return []
        return [("Server" if server else "User-Agent", self.config.user_agent)]

    # -- output --

    def emit(self, event: SipEvent) -> None:
        self.events.append(event)

    def send(self, message: SipRequest | SipResponse) -> None:
        self.outbox += bytes(message)
        self._trace("sent", message)

    def received(self, message: SipRequest | SipResponse) -> None:
        self._trace("received", message)

    def _trace(self, direction: str, message: SipRequest | SipResponse) -> None:
        first = (
            f"{message.method} {message.uri}"
            if isinstance(message, SipRequest)
            else (f"{message.status} {message.reason}")
        )
        self.trace.append(TraceEntry(direction, message.headers.get("Call-ID"), redact_uri(first)))

    # -- transactions --

    def start_client(
        self, request: SipRequest, now: float, *, on_response: ResponseHandler, on_timeout: TimeoutHandler
    ) -> ClientTransaction:
        """Send ``request`` through a new client transaction."""
        tx = ClientTransaction(
            request, now=now, on_response=on_response, on_timeout=on_timeout, t1=self.config.t1
        )
        self.client_txs[tx.key] = tx
        self.send(request)
        return tx

    def start_server(self, request: SipRequest, now: float) -> ServerTransaction:
        tx = ServerTransaction(request, now=now, t1=self.config.t1)
        self.server_txs[tx.key] = tx
        return tx

    def respond(
        self,
        tx: ServerTransaction,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        to_tag: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipResponse:
        """Answer the request of ``tx`` through it (a To tag is added to every response but 100)."""
        response = build_response(
            tx.request,
            status,
            reason,
            to_tag=to_tag if status > 100 else None,
            headers=[*headers, *self.user_agent(server=True)],
            body=body,
            content_type=content_type,
        )
        tx.respond(response, now)
        self.send(response)
        if tx.terminated:
            self.server_txs.pop(tx.key, None)
        return response
