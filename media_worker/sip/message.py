"""SIP requests and responses (RFC 3261 §7): parsing from bytes, serialising with ``bytes(msg)``, building.

Header values are kept as text exactly as received (after unfolding); the structured views (``cseq``,
``from_``, ``vias``...) parse on access and raise ParseError for a missing or malformed header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, TypeAlias

from media_worker.sip.exceptions import LocalProtocolError, ParseError
from media_worker.sip.fields import CSeq, NameAddr, Via, split_name_addr
from media_worker.sip.grammar import has_control_chars, is_token
from media_worker.sip.headers import Headers
from media_worker.sip.parsing import (
    DEFAULT_LIMITS,
    HEAD_END,
    TOO_LARGE,
    Limits,
    ParsedHead,
    RequestLine,
    parse_head,
)
from media_worker.sip.redaction import redact_uri
from media_worker.sip.uri import SipUri

__all__ = [
    "DEFAULT_LIMITS",
    "REASON_PHRASES",
    "CSeq",
    "Headers",
    "Limits",
    "NameAddr",
    "SipMessage",
    "SipRequest",
    "SipResponse",
    "Via",
    "build_request",
    "build_response",
    "parse_message",
]

# RFC 3261 §21 plus RFC 3262 (PRACK), RFC 4028 (422) and RFC 3265 (489).
REASON_PHRASES: Final[dict[int, str]] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}
# Fallback phrase per status class for codes missing from the table.
_CLASS_PHRASES: Final = {
    1: "Provisional",
    2: "Success",
    3: "Redirection",
    4: "Client Error",
    5: "Server Error",
}
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"]+")


class _HeaderViews:
    """Structured views of the mandatory headers shared by requests and responses."""

    __slots__ = ()
    headers: Headers

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise ParseError(f"message has no {name} header")
        return value

    @property
    def call_id(self) -> str:
        """The Call-ID (§20.8)."""
        return self._required("Call-ID")

    @property
    def cseq(self) -> CSeq:
        """The parsed CSeq (§20.16)."""
        return CSeq.parse(self._required("CSeq"))

    @property
    def from_(self) -> NameAddr:
        """The parsed From header (§20.20)."""
        return NameAddr.parse(self._required("From"))

    @property
    def to(self) -> NameAddr:
        """The parsed To header (§20.39)."""
        return NameAddr.parse(self._required("To"))

    @property
    def vias(self) -> list[Via]:
        """Every Via value, topmost first (§20.42)."""
        return [Via.parse(value) for value in self.headers.get_all("Via")]

    @property
    def content_type(self) -> str | None:
        """The Content-Type value, if any."""
        return self.headers.get("Content-Type")


def _serialise(start_line: str, headers: Headers, body: bytes) -> bytes:
    # Content-Length is always written and always matches the body (§20.14; mandatory over streams, §18.3).
    lines = [start_line]
    length_written = False
    for name, value in headers:
        if name == "Content-Length":
            if length_written:
                continue
            value, length_written = str(len(body)), True
        lines.append(f"{name}: {value}")
    if not length_written:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines)).encode("utf-8") + HEAD_END + body


@dataclass(frozen=True, slots=True)
class SipRequest(_HeaderViews):
    """A SIP request. ``uri`` is the Request-URI text as on the wire (any absoluteURI scheme)."""

    method: str
    uri: str
    headers: Headers
    body: bytes = b""

    def __bytes__(self) -> bytes:
        return _serialise(f"{self.method} {self.uri} SIP/2.0", self.headers, self.body)

    def __repr__(self) -> str:
        return (
            f"SipRequest(method={self.method!r}, uri={redact_uri(repr(self.uri))}, headers={self.headers!r}, "
            f"body=<{len(self.body)} bytes>)"
        )

    def uri_parsed(self) -> SipUri:
        """The Request-URI as a SipUri (ParseError if it is not sip/sips)."""
        return SipUri.parse(self.uri)


@dataclass(frozen=True, slots=True)
class SipResponse(_HeaderViews):
    """A SIP response."""

    status: int
    reason: str
    headers: Headers
    body: bytes = b""

    def __bytes__(self) -> bytes:
        return _serialise(f"SIP/2.0 {self.status} {self.reason}", self.headers, self.body)

    def __repr__(self) -> str:
        return (
            f"SipResponse(status={self.status!r}, reason={self.reason!r}, headers={self.headers!r}, "
            f"body=<{len(self.body)} bytes>)"
        )


SipMessage: TypeAlias = SipRequest | SipResponse


def message_from_head(head: ParsedHead, body: bytes) -> SipMessage:
    """Combine a parsed head with its body."""
    if isinstance(head.start, RequestLine):
        return SipRequest(head.start.method, head.start.uri, head.headers, body)
    return SipResponse(head.start.status, head.start.reason, head.headers, body)


def parse_message(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> SipMessage:
    """Parse one complete message: start line, headers, blank line and body.

    Without Content-Length the body is the rest of ``data`` (datagram rule, §18.3); with it, a shorter body is
    a ParseError and octets beyond it are discarded (§18.3). Raises ParseError and nothing else for bad input.
    """
    if len(data) > limits.max_message_bytes:
        raise ParseError(f"message exceeds {limits.max_message_bytes} bytes", status_hint=TOO_LARGE)
    end = data.find(HEAD_END)
    if end < 0:
        raise ParseError("no empty line ends the header section")
    head = parse_head(data[: end + len(HEAD_END)], limits)
    rest = data[end + len(HEAD_END) :]
    if head.content_length is None:
        return message_from_head(head, rest)
    if len(rest) < head.content_length:
        raise ParseError(f"body has {len(rest)} bytes but Content-Length says {head.content_length}")
    return message_from_head(head, rest[: head.content_length])


def _finish_headers(
    headers: Headers, extra: Iterable[tuple[str, str]], body: bytes, content_type: str | None
) -> Headers:
    for name, value in extra:
        headers.add(name, value)
    if content_type is not None:
        headers.set("Content-Type", content_type)
    if body and "Content-Type" not in headers:
        raise LocalProtocolError("a message with a body needs a Content-Type (§20.15)")
    headers.set("Content-Length", str(len(body)))
    return headers


def build_request(
    method: str,
    uri: str | SipUri,
    *,
    headers: Iterable[tuple[str, str]],
    body: bytes = b"",
    content_type: str | None = None,
) -> SipRequest:
    """Build a request; Content-Type is set from ``content_type`` and Content-Length from the body."""
    uri_text = str(uri)
    if not is_token(method):
        raise LocalProtocolError(f"method {method!r} is not a token")
    if not _ABSOLUTE_URI.fullmatch(uri_text):
        raise LocalProtocolError(f"Request-URI {uri_text!r} is not an absolute URI")
    return SipRequest(method, uri_text, _finish_headers(Headers(), headers, body, content_type), body)


def build_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> SipResponse:
    """Build a response to ``request`` (§8.2.6.2).

    Via (all, in order), From, To (plus ``to_tag`` if it has none), Call-ID and CSeq are copied; ``reason``
    defaults from REASON_PHRASES. A 100 also copies Timestamp (§8.2.6.1).
    """
    if not 100 <= status <= 699:
        raise LocalProtocolError(f"status {status} is outside 100..699")
    if reason is None:
        reason = REASON_PHRASES.get(status, _CLASS_PHRASES.get(status // 100, "Global Failure"))
    if has_control_chars(reason) or "\r" in reason:
        raise LocalProtocolError("reason phrase contains control characters")
    copied = Headers((name, value) for name, value in request.headers if name == "Via")
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = request.headers.get(name)
        if value is None:
            raise LocalProtocolError(f"request has no {name} header to copy into the response")
        if name == "To" and to_tag is not None:
            value = _add_tag(value, to_tag)
        copied.add(name, value)
    timestamp = request.headers.get("Timestamp")
    if status == 100 and timestamp is not None:
        copied.add("Timestamp", timestamp)
    return SipResponse(status, reason, _finish_headers(copied, headers, body, content_type), body)


def _add_tag(to_value: str, tag: str) -> str:
    if not is_token(tag):
        raise LocalProtocolError(f"tag {tag!r} is not a token")
    try:
        _, _, params = split_name_addr(to_value)
    except ParseError as exc:
        raise LocalProtocolError(f"request To header is malformed: {exc}") from None
    if any(name.lower() == "tag" for name, _ in params):
        return to_value  # §8.2.6.2: a To that already has a tag is copied unchanged
    # Appending keeps the request's To text byte-for-byte, as §8.2.6.2 requires apart from the tag.
    return f"{to_value};tag={tag}"
