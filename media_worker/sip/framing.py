"""Splitting a SIP byte stream (TLS/TCP) into messages, RFC 3261 §18.3, and CRLF keep-alives, RFC 5626 §3.5.1.

Over a stream every message must carry Content-Length; the framer reads the head up to the blank line, then
exactly that many body octets. Between messages a peer may send a ping (CRLF CRLF, answered with one CRLF)
or a pong (a single CRLF, the answer to our ping).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from media_worker.sip.exceptions import ParseError
from media_worker.sip.message import SipMessage, message_from_head
from media_worker.sip.parsing import DEFAULT_LIMITS, HEAD_END, TOO_LARGE, Limits, ParsedHead, parse_head

__all__ = ["PING", "PONG", "KeepAlivePing", "KeepAlivePong", "StreamFramer"]

PING: Final = b"\r\n\r\n"
PONG: Final = b"\r\n"


@dataclass(frozen=True, slots=True)
class KeepAlivePing:
    """The peer sent CRLF CRLF: answer with a single CRLF (PONG)."""


@dataclass(frozen=True, slots=True)
class KeepAlivePong:
    """The peer sent a lone CRLF: the answer to our PING."""


class StreamFramer:
    """Buffers stream data and hands out whole messages and keep-alives, in order.

    A CRLF at the start of the buffer is a pong unless the bytes already fed make it a ping: a pong must be
    reported without waiting, because the peer sends nothing after it. A ping split between two feeds thus
    reads as two pongs; over TLS the four octets of a ping normally arrive in one record.
    """

    def __init__(self, *, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._scan_from = 0  # where to resume looking for the end of the head: keeps scanning O(n)
        self._head: ParsedHead | None = None
        self._head_length = 0
        self._error: ParseError | None = None

    def feed(self, data: bytes) -> None:
        """Append received bytes; then call next_item() until it returns None."""
        self._buffer += data

    def next_item(self) -> SipMessage | KeepAlivePing | KeepAlivePong | None:
        """The next complete message or keep-alive, or None if more data is needed.

        Raises ParseError when the stream cannot be recovered (oversize head or body, missing Content-Length,
        garbage); every later call raises it again, and the caller should close the connection.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._next_item()
        except ParseError as exc:
            self._error = exc
            raise

    @property
    def buffered(self) -> int:
        """Octets received but not yet handed out."""
        return len(self._buffer)

    def _next_item(self) -> SipMessage | KeepAlivePing | KeepAlivePong | None:
        head = self._head
        if head is None:
            if self._buffer[:1] == b"\r":
                return self._keep_alive()
            head = self._read_head()
            if head is None:
                return None
        end = self._head_length + (head.content_length or 0)
        if len(self._buffer) < end:
            return None
        message = message_from_head(head, bytes(self._buffer[self._head_length : end]))
        del self._buffer[:end]
        self._head, self._head_length, self._scan_from = None, 0, 0
        return message

    def _read_head(self) -> ParsedHead | None:
        end = self._buffer.find(HEAD_END, self._scan_from)
        if end < 0:
            if len(self._buffer) > self._limits.max_header_bytes:
                raise ParseError(
                    f"no end of header section within {self._limits.max_header_bytes} bytes",
                    status_hint=TOO_LARGE,
                )
            self._scan_from = max(0, len(self._buffer) - len(HEAD_END) + 1)
            return None
        head_length = end + len(HEAD_END)
        head = parse_head(bytes(self._buffer[:head_length]), self._limits)
        if head.content_length is None:
            raise ParseError("Content-Length is mandatory on stream transports (§18.3)")
        if head_length + head.content_length > self._limits.max_message_bytes:
            raise ParseError(f"message exceeds {self._limits.max_message_bytes} bytes", status_hint=TOO_LARGE)
        self._head, self._head_length = head, head_length
        return head

    def _keep_alive(self) -> KeepAlivePing | KeepAlivePong | None:
        # RFC 5626 §3.5.1; also covers §7.5's CRLFs before a start line, which are ignorable either way.
        buffered = bytes(self._buffer[: len(PING)])
        if buffered == PING:
            del self._buffer[: len(PING)]
            return KeepAlivePing()
        if len(buffered) == 1 or buffered == b"\r\n\r":
            return None  # one more octet decides
        if not buffered.startswith(PONG):
            raise ParseError("stray CR between messages")
        del self._buffer[: len(PONG)]
        return KeepAlivePong()
