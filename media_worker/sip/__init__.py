"""Sans-I/O SIP over one reliable connection: messages, transactions, dialogs, session timers, digest auth.

Start with :class:`SipConnection` (the user agent) and the events it reports; the message layer
(``SipRequest``, ``SipResponse``, ``SipUri``, ``StreamFramer``...) is exported for tests, tools and the Voice
Connector stand-in.
"""

from __future__ import annotations

from media_worker.sip.auth import (
    DigestChallenge,
    DigestCredentials,
    DigestResponse,
    digest_authorization,
    digest_challenge,
    verify_authorization,
)
from media_worker.sip.connection import SipConnection
from media_worker.sip.context import DEFAULT_ALLOW, SipConfiguration, TraceEntry
from media_worker.sip.events import (
    AnswerReceived,
    CallAnswered,
    CallCancelled,
    CallConfirmed,
    CallFailed,
    CallProgressed,
    ConnectionFailed,
    DialogTerminated,
    FailureCategory,
    IncomingCall,
    InfoReceived,
    MessageRejected,
    OfferReceived,
    OfferRejected,
    Party,
    RequestCompleted,
    SessionRefreshed,
    SipEvent,
    TerminationReason,
    classify_failure,
)
from media_worker.sip.exceptions import (
    LocalProtocolError,
    ParseError,
    ProtocolError,
    RemoteProtocolError,
    SipError,
)
from media_worker.sip.framing import PING, PONG, KeepAlivePing, KeepAlivePong, StreamFramer
from media_worker.sip.message import (
    DEFAULT_LIMITS,
    REASON_PHRASES,
    CSeq,
    Headers,
    Limits,
    NameAddr,
    SipMessage,
    SipRequest,
    SipResponse,
    Via,
    build_request,
    build_response,
    parse_message,
)
from media_worker.sip.session_timer import DEFAULT_MIN_SE, DEFAULT_SESSION_EXPIRES, SessionExpires
from media_worker.sip.transaction import T1, T2
from media_worker.sip.uri import SipUri, chime_join_uri, chime_to_uri, escape_param_value, redact_uri

__all__ = [
    "DEFAULT_ALLOW",
    "DEFAULT_LIMITS",
    "DEFAULT_MIN_SE",
    "DEFAULT_SESSION_EXPIRES",
    "PING",
    "PONG",
    "REASON_PHRASES",
    "T1",
    "T2",
    "AnswerReceived",
    "CSeq",
    "CallAnswered",
    "CallCancelled",
    "CallConfirmed",
    "CallFailed",
    "CallProgressed",
    "ConnectionFailed",
    "DialogTerminated",
    "DigestChallenge",
    "DigestCredentials",
    "DigestResponse",
    "FailureCategory",
    "Headers",
    "IncomingCall",
    "InfoReceived",
    "KeepAlivePing",
    "KeepAlivePong",
    "Limits",
    "LocalProtocolError",
    "MessageRejected",
    "NameAddr",
    "OfferReceived",
    "OfferRejected",
    "ParseError",
    "Party",
    "ProtocolError",
    "RemoteProtocolError",
    "RequestCompleted",
    "SessionExpires",
    "SessionRefreshed",
    "SipConfiguration",
    "SipConnection",
    "SipError",
    "SipEvent",
    "SipMessage",
    "SipRequest",
    "SipResponse",
    "SipUri",
    "StreamFramer",
    "TerminationReason",
    "TraceEntry",
    "Via",
    "build_request",
    "build_response",
    "chime_join_uri",
    "chime_to_uri",
    "classify_failure",
    "digest_authorization",
    "digest_challenge",
    "escape_param_value",
    "parse_message",
    "redact_uri",
    "verify_authorization",
]
