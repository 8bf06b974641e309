"""RFC 3261 §17 transactions over a reliable transport (TLS), client and server side.

Over a reliable transport the transaction layer retransmits nothing (Timers A, E and G never run), but the
transactions still time out (Timer B/F = 64*T1), absorb retransmitted requests and resend their last
response. Timers D, I, J and K are zero for reliable transports, so a completed transaction ends at once. The
INVITE server transaction absorbs retransmitted INVITEs for Timer L after a 2xx (RFC 6026 §8.7 "Accepted").

Transactions never send anything themselves: they return what the caller must send, and expose ``deadline``
(the earliest time ``handle_timer`` must run, or None).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from media_worker.sip.exceptions import LocalProtocolError, ParseError
from media_worker.sip.message import CSeq, Headers, SipRequest, SipResponse

__all__ = [
    "T1",
    "T2",
    "ClientKey",
    "ClientState",
    "ClientTransaction",
    "ResponseOutcome",
    "ServerKey",
    "ServerState",
    "ServerTransaction",
    "client_key",
    "server_key",
]

T1 = 0.5  # RFC 3261 §17.1.1.1: RTT estimate
T2 = 4.0  # RFC 3261 §17.1.2.2: maximum retransmit interval for non-INVITE requests and INVITE responses
# Zero waits for reliable transports (RFC 3261 §17.1.1.2 Timer D, §17.1.2.2 K, §17.2.1 I, §17.2.2 J).
_RELIABLE_LINGER = 0.0

ClientKey = tuple[str, str]  # (branch, CSeq method): RFC 3261 §17.1.3
ServerKey = tuple[str, str, str]  # (branch, Via sent-by, method; ACK counts as INVITE): RFC 3261 §17.2.3

ResponseHandler = Callable[[SipResponse, float], None]
TimeoutHandler = Callable[[float], None]


def client_key(message: SipRequest | SipResponse) -> ClientKey:
    """The key that matches a response to the client transaction that sent its request (RFC 3261 §17.1.3)."""
    vias = message.vias
    if not vias:
        # RFC 3261 §8.2.6.2 / §18.2.2: a response carries the request's Via; without one it matches nothing.
        raise ParseError("message has no Via header", status_hint=400)
    return vias[0].branch or "", message.cseq.method


def server_key(request: SipRequest) -> ServerKey:
    """The key that matches a request to a server transaction (RFC 3261 §17.2.3).

    Branches without the RFC 3261 magic cookie fall back to the Call-ID and CSeq number, a reduced form of the
    RFC 2543 matching rules that is enough for a peer that retransmits verbatim.
    """
    via = request.vias[0]
    sent_by = f"{via.host}:{via.port or 5061}"
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    if not branch.startswith("z9hG4bK"):
        branch = f"{branch}|{request.call_id}|{request.cseq.seq}"
    return branch, sent_by, method


class ClientState(enum.Enum):
    """States of RFC 3261 Figures 5 and 6 (INVITE starts in CALLING, others in TRYING)."""

    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class ResponseOutcome:
    """What the transaction did with a response: whether the TU sees it, and an ACK to send (§17.1.1.3)."""

    deliver: bool
    ack: SipRequest | None = None


class ClientTransaction:
    """An INVITE or non-INVITE client transaction (RFC 3261 §17.1.1, §17.1.2) for a reliable transport."""

    def __init__(
        self,
        request: SipRequest,
        *,
        now: float,
        on_response: ResponseHandler,
        on_timeout: TimeoutHandler,
        t1: float = T1,
    ) -> None:
        self.request = request
        self.key = client_key(request)
        self.is_invite = request.method == "INVITE"
        self.state = ClientState.CALLING if self.is_invite else ClientState.TRYING
        self.on_response = on_response
        self.on_timeout = on_timeout
        self._t1 = t1
        # Timer B (INVITE) or Timer F (non-INVITE): 64*T1 until a final response.
        self.deadline: float | None = now + 64 * t1

    @property
    def terminated(self) -> bool:
        return self.state is ClientState.TERMINATED

    def receive_response(self, response: SipResponse, now: float) -> ResponseOutcome:
        """Advance on a response that matched this transaction."""
        status = response.status
        if self.state in (ClientState.COMPLETED, ClientState.TERMINATED):
            # A retransmitted final response: re-ACK non-2xx INVITE finals, never bother the TU again.
            ack = self._build_ack(response) if self.is_invite and status >= 300 else None
            return ResponseOutcome(deliver=False, ack=ack)
        if status < 200:
            if self.is_invite:
                self.deadline = (
                    None  # Timer B only runs in Calling (§17.1.1.2); the TU owns the ring timeout.
                )
            self.state = ClientState.PROCEEDING
            return ResponseOutcome(deliver=True)
        if self.is_invite and status < 300:
            # 2xx: the TU (dialog) acknowledges it and absorbs its retransmissions (§13.2.2.4).
            self._terminate()
            return ResponseOutcome(deliver=True)
        ack = self._build_ack(response) if self.is_invite else None
        self._complete(now)
        return ResponseOutcome(deliver=True, ack=ack)

    def cancel_requested(self, now: float) -> None:
        """A CANCEL went out for this INVITE: give up 64*T1 after it if no final response came (§9.1)."""
        if self.is_invite and not self.terminated:
            self.deadline = now + 64 * self._t1

    def handle_timer(self, now: float) -> bool:
        """Fire due timers; True if the transaction timed out (the TU must then be told, §8.1.3.1)."""
        if self.deadline is None or now < self.deadline:
            return False
        timed_out = self.state is not ClientState.COMPLETED
        self._terminate()
        return timed_out

    def _complete(self, now: float) -> None:
        self.state = ClientState.COMPLETED
        if _RELIABLE_LINGER <= 0:
            self._terminate()
        else:  # pragma: no cover - kept for unreliable transports
            self.deadline = now + _RELIABLE_LINGER

    def _terminate(self) -> None:
        self.state = ClientState.TERMINATED
        self.deadline = None

    def _build_ack(self, response: SipResponse) -> SipRequest:
        """RFC 3261 §17.1.1.3: the ACK for a non-2xx final response belongs to the INVITE transaction."""
        original = self.request
        headers = [
            ("Via", original.headers.get_all("Via")[0]),
            ("Max-Forwards", "70"),
            ("From", original.headers.get("From") or ""),
            ("To", response.headers.get("To") or ""),
            ("Call-ID", original.call_id),
            ("CSeq", str(CSeq(original.cseq.seq, "ACK"))),
        ]
        headers.extend(("Route", route) for route in original.headers.get_all("Route"))
        return SipRequest("ACK", original.uri, Headers(headers))


class ServerState(enum.Enum):
    """States of RFC 3261 Figures 7 and 8, plus RFC 6026's Accepted."""

    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


class ServerTransaction:
    """An INVITE or non-INVITE server transaction (RFC 3261 §17.2.1, §17.2.2) for a reliable transport."""

    def __init__(self, request: SipRequest, *, now: float, t1: float = T1) -> None:
        self.request = request
        self.key = server_key(request)
        self.is_invite = request.method == "INVITE"
        self.state = ServerState.PROCEEDING if self.is_invite else ServerState.TRYING
        self.last_response: SipResponse | None = None
        self.deadline: float | None = None
        self._t1 = t1

    @property
    def terminated(self) -> bool:
        return self.state is ServerState.TERMINATED

    @property
    def final_sent(self) -> bool:
        return self.last_response is not None and self.last_response.status >= 200

    def respond(self, response: SipResponse, now: float) -> SipResponse:
        """Record ``response`` as sent through this transaction; returns it for the caller to send."""
        if self.final_sent or self.terminated:
            raise LocalProtocolError(f"{self.request.method} was already answered with a final response")
        self.last_response = response
        status = response.status
        if status < 200:
            self.state = ServerState.PROCEEDING
        elif self.is_invite and status < 300:
            self.state = ServerState.ACCEPTED
            self.deadline = now + 64 * self._t1  # RFC 6026 Timer L
        elif self.is_invite:
            self.state = ServerState.COMPLETED
            self.deadline = now + 64 * self._t1  # Timer H: wait for the ACK (no Timer G over TLS)
        else:
            self.state = ServerState.COMPLETED
            self._linger(now)
        return response

    def receive_request(self, request: SipRequest, now: float) -> SipResponse | None:
        """A request matched this transaction: a retransmission or the ACK for a non-2xx final.

        Returns the response to send again, if any (§17.2.1, §17.2.2).
        """
        if request.method == "ACK":
            if self.state is ServerState.COMPLETED:
                self.state = ServerState.CONFIRMED
                self._linger(now)  # Timer I
            return None
        if self.state in (ServerState.PROCEEDING, ServerState.COMPLETED):
            return self.last_response
        return None  # Trying: nothing sent yet; Accepted: the TU retransmits the 2xx itself

    def handle_timer(self, now: float) -> None:
        """Fire due timers (H, L)."""
        if self.deadline is not None and now >= self.deadline:
            self.state = ServerState.TERMINATED
            self.deadline = None

    def _linger(self, now: float) -> None:
        if _RELIABLE_LINGER <= 0:
            self.state = ServerState.TERMINATED
            self.deadline = None
        else:  # pragma: no cover - kept for unreliable transports
            self.deadline = now + _RELIABLE_LINGER
