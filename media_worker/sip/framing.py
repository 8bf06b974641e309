"""Splitting a SIP byte stream (TLS/TCP) into messages, RFC 3261 §18.3, and CRLF keep-alives, RFC 5626 §3.5.1.

Over a stream every message must carry Content-Length; the framer reads the head up to the blank line, then
exactly that many body octets. Between messages a peer may send a ping (CRLF CRLF, answered with one CRLF)
or a pong (a single CRLF, the answer to our ping).

A head can be invalid while the framing around it is intact: it ends with CRLF CRLF and carries one usable
Content-Length, so the next message's start is known. With ``report_malformed=True`` such a message comes
out as a :class:`MalformedMessage` and the stream goes on, so one bad message does not cost every call on
the connection (RFC 3261 §21.4.1 answers it with 400). Only a stream that cannot be framed any more raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from media_worker.sip.exceptions import ParseError
from media_worker.sip.grammar import has_control_chars, is_token, parse_uint
from media_worker.sip.headers import canonical_name
from media_worker.sip.message import SipMessage, message_from_head
from media_worker.sip.parsing import DEFAULT_LIMITS, HEAD_END, TOO_LARGE, Limits, ParsedHead, parse_head

__all__ = [
    "PING",
    "PONG",
    "KeepAlivePing",
    "KeepAlivePong",
    "MalformedMessage",
    "StreamFramer",
    "salvage_fields",
]

PING: Final = b"\r\n\r\n"
PONG: Final = b"\r\n"
_MAX_UINT32: Final = 2**32 - 1
# Fields that mark a head as SIP even when its start line is unreadable (§8.1.1 mandatory fields).
_SIP_MARKERS: Final = frozenset({"Via", "Call-ID", "CSeq"})


@dataclass(frozen=True, slots=True)
class KeepAlivePing:
    """The peer sent CRLF CRLF: answer with a single CRLF (PONG)."""


@dataclass(frozen=True, slots=True)
class KeepAlivePong:
    """The peer sent a lone CRLF: the answer to our PING."""


@dataclass(frozen=True, slots=True)
class MalformedMessage:
    """A message that was framed correctly but whose head failed validation; the stream continues after it.

    Answer a request with ``error.status_hint`` if its headers allow one (RFC 3261 §8.2, §21.4.1); drop a
    response. ``head`` and ``body`` may carry a join token, so they are kept out of the repr.
    """

    error: ParseError
    """Why the head was refused (its message is already redacted)."""
    head: bytes = field(repr=False)
    """The raw head, start line to the closing CRLF CRLF."""
    is_request: bool | None
    """True for a request line, False for a status line, None when the start line is unrecognisable."""
    body: bytes = field(default=b"", repr=False)
    """The Content-Length octets that followed the head."""


StreamItem = SipMessage | KeepAlivePing | KeepAlivePong | MalformedMessage


class StreamFramer:
    """Buffers stream data and hands out whole messages and keep-alives, in order.

    A CRLF at the start of the buffer is a pong unless the bytes already fed make it a ping: a pong must be
    reported without waiting, because the peer sends nothing after it. A ping split between two feeds thus
    reads as two pongs; over TLS the four octets of a ping normally arrive in one record.

    With ``report_malformed=True`` a framed message whose head is invalid is handed out as a
    :class:`MalformedMessage` instead of raising; without it every invalid head is fatal.
    """

    def __init__(self, *, limits: Limits = DEFAULT_LIMITS, report_malformed: bool = False) -> None:
        self._limits = limits
        self._report_malformed = report_malformed
        self._buffer = bytearray()
        self._scan_from = 0  # where to resume looking for the end of the head: keeps scanning O(n)
        # The message being read: its parsed head, or for a malformed one the error and kind; None between
        # messages. Then the head's length and the body's.
        self._pending: ParsedHead | tuple[ParseError, bool | None] | None = None
        self._head_length = 0
        self._content_length = 0
        self._error: ParseError | None = None

    def feed(self, data: bytes) -> None:
        """Append received bytes; then call next_item() until it returns None."""
        self._buffer += data

    def next_item(self) -> StreamItem | None:
        """The next complete message or keep-alive, or None if more data is needed.

        Raises ParseError when the stream cannot be recovered (oversize head or body, missing or invalid
        Content-Length, garbage); every later call raises it again, and the caller should close the
        connection.
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

    def _next_item(self) -> StreamItem | None:
        pending = self._pending
        if pending is None:
            if self._buffer[:1] == b"\r":
                return self._keep_alive()
            pending = self._read_head()
            if pending is None:
                return None
        end = self._head_length + self._content_length
        if len(self._buffer) < end:
            return None
        body = bytes(self._buffer[self._head_length : end])
        item: StreamItem
        if isinstance(pending, ParsedHead):
            item = message_from_head(pending, body)
        else:
            error, is_request = pending
            item = MalformedMessage(error, bytes(self._buffer[: self._head_length]), is_request, body)
        del self._buffer[:end]
        self._pending, self._head_length, self._content_length, self._scan_from = None, 0, 0, 0
        return item

    def _read_head(self) -> ParsedHead | tuple[ParseError, bool | None] | None:
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
        raw = bytes(self._buffer[:head_length])
        pending: ParsedHead | tuple[ParseError, bool | None]
        try:
            pending = parse_head(raw, self._limits)
        except ParseError as exc:
            if not self._report_malformed or head_length > self._limits.max_header_bytes:
                raise
            content_length, is_request = _salvage_framing(raw, exc)
            pending = (exc, is_request)
        else:
            if pending.content_length is None:
                raise ParseError("Content-Length is mandatory on stream transports (§18.3)")
            content_length = pending.content_length
        if head_length + content_length > self._limits.max_message_bytes:
            raise ParseError(f"message exceeds {self._limits.max_message_bytes} bytes", status_hint=TOO_LARGE)
        self._pending, self._head_length, self._content_length = pending, head_length, content_length
        return pending

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


def salvage_fields(head: bytes) -> tuple[str | None, list[tuple[str, str]]]:
    """Read a head that failed validation as leniently as framing and error responses need.

    Returns the start line (None if it is not printable UTF-8) and the header fields that are: unfolded
    (§7.3.1), names canonical, values stripped. Fields with undecodable octets, control characters or a
    name that is not a token are left out, continuation lines included; nothing here is validated further.
    """
    lines = head[: -len(HEAD_END)].split(b"\r\n") if head.endswith(HEAD_END) else head.split(b"\r\n")
    start = _printable(lines[0])
    fields: list[tuple[str, list[str]] | None] = []  # None: a field that cannot be used
    for raw in lines[1:]:
        line = _printable(raw)
        if raw[:1] in (b" ", b"\t"):
            current = fields[-1] if fields else None
            if current is not None and line is not None:
                current[1].append(line.strip(" \t"))
            elif current is not None:
                fields[-1] = None  # a broken continuation spoils the whole field
            continue
        name, colon, value = (line or "").partition(":")
        name = name.rstrip(" \t")
        usable = line is not None and colon and is_token(name)
        fields.append((canonical_name(name), [value.strip(" \t")]) if usable else None)
    return start, [(name, " ".join(part for part in parts if part)) for name, parts in filter(None, fields)]


def _printable(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if has_control_chars(text) or "\r" in text else text


def _salvage_framing(head: bytes, error: ParseError) -> tuple[int, bool | None]:
    """Content-Length and kind of an invalid head, or raise if the stream cannot be framed past it."""
    start, fields = salvage_fields(head)
    if not start:
        raise error  # garbage where a start line should be: this is not a SIP stream any more
    is_request = _start_line_kind(start)
    names = {name for name, _ in fields}
    if is_request is None and not names & _SIP_MARKERS:
        raise error  # neither a SIP start line nor SIP headers: another protocol, or noise
    lengths = {value for name, value in fields if name == "Content-Length"}
    if not lengths:
        raise ParseError("Content-Length is mandatory on stream transports (§18.3)")
    if len(lengths) > 1:
        raise ParseError("conflicting Content-Length values: the stream cannot be framed")
    return parse_uint(lengths.pop(), _MAX_UINT32, "Content-Length"), is_request


def _start_line_kind(line: str) -> bool | None:
    if line[:4].upper() == "SIP/":
        return False  # Status-Line, whatever is wrong with it
    words = line.split()
    if len(words) >= 2 and is_token(words[0]) and words[-1][:4].upper() == "SIP/":
        return True  # Method ... SIP-Version: a Request-Line with odd spacing, URI or version
    return None
