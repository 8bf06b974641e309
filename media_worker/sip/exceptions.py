"""Errors raised by the SIP core.

::

    SipError
    └── ProtocolError                 (abstract; carries status_hint)
        ├── LocalProtocolError        our caller misused the API
        └── RemoteProtocolError       the peer sent something invalid
            └── ParseError            bytes that are not a valid SIP message / URI / header value

Messages never contain a join token: they are passed through :func:`redact_uri` on construction.
"""

from __future__ import annotations

from media_worker.sip.redaction import redact_uri

__all__ = ["LocalProtocolError", "ParseError", "ProtocolError", "RemoteProtocolError", "SipError"]


class SipError(Exception):
    """Base class of every error raised by media_worker.sip."""


class ProtocolError(SipError):
    """A SIP protocol violation; ``status_hint`` is the status to answer a received request with.

    Abstract: raise :class:`LocalProtocolError` or :class:`RemoteProtocolError` (or a subclass) instead.
    """

    status_hint: int

    def __init__(self, msg: str, *, status_hint: int = 400) -> None:
        if type(self) is ProtocolError:
            raise TypeError("ProtocolError is abstract; raise LocalProtocolError or RemoteProtocolError")
        super().__init__(redact_uri(msg))
        self.status_hint = status_hint


class LocalProtocolError(ProtocolError):
    """Our caller asked for something SIP does not allow; fix the calling code."""

    def __init__(self, msg: str, *, status_hint: int = 500) -> None:
        super().__init__(msg, status_hint=status_hint)


class RemoteProtocolError(ProtocolError):
    """The peer sent something invalid; reject it (answer ``status_hint``) or drop the connection."""


class ParseError(RemoteProtocolError):
    """Input that is not a valid SIP message, URI or header value."""
