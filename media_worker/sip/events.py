"""Events that :class:`SipConnection` reports through ``next_event()``.

Don't subclass these. Every event names the call it belongs to by its Call-ID (the handle that ``invite()``
returns and :class:`IncomingCall` announces); ``request_id`` numbers identify one request inside a connection.
SDP bodies are opaque bytes here: offer/answer lives above this package.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from media_worker.sip.message import Headers, NameAddr

__all__ = [
    "AnswerReceived",
    "CallAnswered",
    "CallCancelled",
    "CallConfirmed",
    "CallFailed",
    "CallProgressed",
    "ConnectionFailed",
    "DialogTerminated",
    "FailureCategory",
    "IncomingCall",
    "InfoReceived",
    "MessageRejected",
    "OfferReceived",
    "OfferRejected",
    "Party",
    "RequestCompleted",
    "SessionRefreshed",
    "SipEvent",
    "TerminationReason",
    "classify_failure",
]


class Party(enum.StrEnum):
    """One end of a dialog, seen from this connection."""

    LOCAL = "local"
    REMOTE = "remote"


class FailureCategory(enum.StrEnum):
    """Why a request failed, coarse enough to decide what to do next (retry, give up, alert)."""

    BUSY = "busy"  # 486, 600
    REJECTED = "rejected"  # 603 and every other final failure not listed here
    UNAVAILABLE = "unavailable"  # 480, 503
    TIMEOUT = "timeout"  # 408 from the peer, or no final response in 64*T1 (Timer B/F)
    NO_ANSWER = "no_answer"  # our ring timeout cancelled the call
    CANCELLED = "cancelled"  # our caller cancelled the call
    AUTH_FAILED = "auth_failed"  # 401/407 that our credentials could not satisfy
    SESSION_INTERVAL = "session_interval"  # 422 that could not be resolved by retrying
    REDIRECTED = "redirected"  # 3xx: we do not follow redirections


class TerminationReason(enum.StrEnum):
    """Why an established dialog ended."""

    BYE = "bye"  # a BYE from the party named in DialogTerminated.by
    SESSION_TIMER_EXPIRED = "session_timer_expired"  # RFC 4028 §10: no refresh arrived in time
    ACK_TIMEOUT = "ack_timeout"  # RFC 3261 §13.3.1.4: our 2xx was never acknowledged
    REQUEST_TIMEOUT = "request_timeout"  # RFC 3261 §12.2.1.2: an in-dialog request got 408 or no answer
    DIALOG_GONE = "dialog_gone"  # RFC 3261 §12.2.1.2: the peer answered 481, it forgot the dialog
    CONNECTION_LOST = "connection_lost"  # the transport connection closed under the dialog


def classify_failure(status: int) -> FailureCategory:
    """Map a final failure status (300-699) to its :class:`FailureCategory`."""
    if status in (486, 600):
        return FailureCategory.BUSY
    if status in (480, 503):
        return FailureCategory.UNAVAILABLE
    if status == 408:
        return FailureCategory.TIMEOUT
    if status in (401, 407):
        return FailureCategory.AUTH_FAILED
    if status == 422:
        return FailureCategory.SESSION_INTERVAL
    if 300 <= status < 400:
        return FailureCategory.REDIRECTED
    return FailureCategory.REJECTED


class SipEvent:
    """Base class of every event; use isinstance() or match on the concrete classes."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingCall(SipEvent):
    """A new INVITE arrived (we are the UAS); answer it with ``answer()`` or ``reject()``."""

    call_id: str
    request_uri: str = field(repr=False)  # carries the join token
    from_: NameAddr
    to: NameAddr
    content_type: str | None
    body: bytes = field(repr=False)
    headers: Headers = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallProgressed(SipEvent):
    """Our INVITE got a provisional response (100 Trying, 180 Ringing, 183 Session Progress...)."""

    call_id: str
    status: int
    reason: str
    content_type: str | None = None
    body: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(SipEvent):
    """Our INVITE was accepted (2xx) and acknowledged; ``body`` is the peer's answer."""

    call_id: str
    status: int
    reason: str
    content_type: str | None
    body: bytes = field(repr=False)
    session_expires: int | None
    refresher: Party | None
    headers: Headers = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallConfirmed(SipEvent):
    """The ACK for our 2xx to an INVITE arrived (we are the UAS); ``body`` is a late answer, if any."""

    call_id: str
    content_type: str | None = None
    body: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFailed(SipEvent):
    """Our INVITE ended without a dialog: a final failure response, a timeout or a cancellation."""

    call_id: str
    status: int
    reason: str
    category: FailureCategory


@dataclass(frozen=True, slots=True, kw_only=True)
class CallCancelled(SipEvent):
    """The peer cancelled its INVITE before we answered it finally; 487 has been sent."""

    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferReceived(SipEvent):
    """A re-INVITE or UPDATE carried an offer; reply with ``answer_offer()`` or ``reject_offer()``."""

    call_id: str
    request_id: int
    method: str
    content_type: str | None
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerReceived(SipEvent):
    """Our offer (``reinvite()`` / ``update()``) was accepted; ``body`` is the peer's answer."""

    call_id: str
    request_id: int
    method: str
    content_type: str | None
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferRejected(SipEvent):
    """Our offer got a final failure; the session keeps its previous description (RFC 3261 §14.1)."""

    call_id: str
    request_id: int
    method: str
    status: int
    reason: str
    category: FailureCategory


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRefreshed(SipEvent):
    """A session refresh (RFC 4028) succeeded; the session now expires ``session_expires`` s from now."""

    call_id: str
    session_expires: int
    refresher: Party
    by: Party


@dataclass(frozen=True, slots=True, kw_only=True)
class InfoReceived(SipEvent):
    """The peer sent INFO inside a dialog; 200 OK has been sent."""

    call_id: str
    content_type: str | None
    body: bytes = field(repr=False)
    headers: Headers = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCompleted(SipEvent):
    """A request sent with ``options()`` or ``info()`` got its final response (408 when it timed out)."""

    call_id: str
    request_id: int
    method: str
    status: int
    reason: str
    headers: Headers = field(repr=False)
    body: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogTerminated(SipEvent):
    """An established (or answered) dialog ended; ``by`` says which side ended it."""

    call_id: str
    by: Party
    reason: TerminationReason
    status: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRejected(SipEvent):
    """A message from the peer was invalid or unexpected: answered with ``status`` or, if None, dropped."""

    reason: str
    status: int | None
    method: str | None = None
    call_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionFailed(SipEvent):
    """The byte stream cannot be framed any more; close the connection (every call on it is lost)."""

    reason: str
