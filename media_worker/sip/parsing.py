"""Parsing of a SIP message head (start line + header fields), RFC 3261 §7, with limits against hostile input.

The head is everything up to and including the blank line; parse_message and StreamFramer attach the body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from media_worker.sip.exceptions import ParseError
from media_worker.sip.fields import CSeq, Via, check_name_addr
from media_worker.sip.grammar import has_control_chars, is_token, parse_uint
from media_worker.sip.headers import Headers
from media_worker.sip.uri import SipUri

__all__ = ["DEFAULT_LIMITS", "HEAD_END", "Limits", "ParsedHead", "RequestLine", "StatusLine", "parse_head"]

HEAD_END: Final = b"\r\n\r\n"
# RFC 3261 §21.5.11 513 Message Too Large; §21.5.6 505 Version Not Supported.
TOO_LARGE: Final = 513
BAD_VERSION: Final = 505
_MAX_UINT32: Final = 2**32 - 1

# Request-URI = SIP-URI / SIPS-URI / absoluteURI (§25.1); never whitespace or angle brackets.
_REQUEST_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"]+")
# Status-Code = 3DIGIT
_STATUS_CODE = re.compile(r"[1-6][0-9][0-9]")
# Fields that may appear at most once (§20, RFC 4475 §3.3.8 and §3.3.9).
_SINGLE_FIELDS: Final = ("Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length", "Content-Type")
_MANDATORY_IN_REQUESTS: Final = ("To", "From", "CSeq", "Call-ID", "Via")  # §8.1.1


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps that keep a hostile peer from making us buffer or loop without bound."""

    max_message_bytes: int = 65_536
    """Whole message: head plus body."""
    max_header_bytes: int = 16_384
    """Start line and header section, including the blank line."""
    max_headers: int = 128
    """Header fields (after unfolding)."""
    max_line: int = 8192
    """One physical line of the head."""


DEFAULT_LIMITS: Final = Limits()


@dataclass(frozen=True, slots=True)
class RequestLine:
    """Request-Line = Method SP Request-URI SP SIP-Version CRLF."""

    method: str
    uri: str


@dataclass(frozen=True, slots=True)
class StatusLine:
    """Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class ParsedHead:
    """A validated head; ``content_length`` is None when the header is absent."""

    start: RequestLine | StatusLine
    headers: Headers
    content_length: int | None


def parse_head(head: bytes, limits: Limits) -> ParsedHead:
    """Parse and validate ``head``, which must end with the CRLF CRLF that closes the header section."""
    if len(head) > limits.max_header_bytes:
        raise ParseError(f"header section exceeds {limits.max_header_bytes} bytes", status_hint=TOO_LARGE)
    if not head.endswith(HEAD_END):
        raise ParseError("header section is not terminated by an empty line")
    try:
        text = head[: -len(HEAD_END)].decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("header section is not valid UTF-8") from None
    lines = text.split("\r\n")
    for line in lines:
        if len(line) > limits.max_line:
            raise ParseError(f"header line exceeds {limits.max_line} characters", status_hint=TOO_LARGE)
        if has_control_chars(line):  # includes a CR or LF that is not part of a CRLF pair
            raise ParseError("control character or bare CR/LF in header section")
    start = _parse_start_line(lines[0])
    headers = Headers(_unfold(lines[1:], limits))
    return ParsedHead(start, headers, _validate(start, headers))


def _parse_start_line(line: str) -> RequestLine | StatusLine:
    if line[:4].upper() == "SIP/":
        return _parse_status_line(line)
    parts = line.split(" ")
    # Exactly one SP between elements and none at the end (RFC 4475 §3.1.2.9, §3.1.2.10).
    if len(parts) != 3:
        raise ParseError(f"malformed request line: {line[:80]!r}")
    method, uri, version = parts
    if not is_token(method):
        raise ParseError(f"bad method in request line: {method[:40]!r}")
    _check_version(version)
    if not _REQUEST_URI.fullmatch(uri):
        raise ParseError(f"bad Request-URI: {uri[:80]!r}")
    if uri.partition(":")[0].lower() in ("sip", "sips") and SipUri.parse(uri).headers:
        # §19.1.1 table: URI headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
        raise ParseError("Request-URI must not carry URI headers")
    return RequestLine(method, uri)


def _parse_status_line(line: str) -> StatusLine:
    version, _, rest = line.partition(" ")
    _check_version(version)
    code, _, reason = rest.partition(" ")  # an absent SP before an empty reason phrase is tolerated
    if not _STATUS_CODE.fullmatch(code):
        raise ParseError(f"bad status code: {code[:20]!r}")
    return StatusLine(int(code), reason)


def _check_version(version: str) -> None:
    if version.upper() != "SIP/2.0":
        hint = BAD_VERSION if version[:4].upper() == "SIP/" else 400
        raise ParseError(f"unsupported protocol version {version[:20]!r}", status_hint=hint)


def _unfold(lines: list[str], limits: Limits) -> list[tuple[str, str]]:
    # §7.3.1: a line starting with SP/HT continues the previous field value; the fold is equivalent to one SP.
    fields: list[tuple[str, list[str]]] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not fields:
                raise ParseError("continuation line before the first header field")
            fields[-1][1].append(line.strip(" \t"))
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not is_token(name):
            raise ParseError(f"malformed header line: {line[:80]!r}")
        fields.append((name, [value.strip(" \t")]))
        if len(fields) > limits.max_headers:
            raise ParseError(f"more than {limits.max_headers} header fields", status_hint=TOO_LARGE)
    return [(name, " ".join(part for part in parts if part)) for name, parts in fields]


def _validate(start: RequestLine | StatusLine, headers: Headers) -> int | None:
    counts: dict[str, int] = {}
    for name, _ in headers:
        counts[name] = counts.get(name, 0) + 1
    for name in _SINGLE_FIELDS:
        if counts.get(name, 0) > 1:
            raise ParseError(f"more than one {name} header field")
    if isinstance(start, RequestLine):
        missing = [name for name in _MANDATORY_IN_REQUESTS if name not in counts]
        if missing:
            raise ParseError(f"request lacks mandatory header(s): {', '.join(missing)}")
    _validate_fields(headers)
    cseq_text = headers.get("CSeq")
    if cseq_text is not None:
        cseq = CSeq.parse(cseq_text)
        if isinstance(start, RequestLine) and cseq.method != start.method:
            raise ParseError(f"CSeq method {cseq.method!r} does not match request method {start.method!r}")
    length = headers.get("Content-Length")
    return None if length is None else parse_uint(length, _MAX_UINT32, "Content-Length")


def _validate_fields(headers: Headers) -> None:
    call_id = headers.get("Call-ID")
    if call_id is not None and (not call_id or any(char.isspace() for char in call_id)):
        raise ParseError("Call-ID must be one non-empty word")
    for name in ("From", "To"):
        value = headers.get(name)
        if value is not None:
            check_name_addr(value)
    for contact in headers.get_all("Contact"):
        if contact != "*":
            check_name_addr(contact)
    for via in headers.get_all("Via"):
        Via.parse(via)
    max_forwards = headers.get("Max-Forwards")
    if max_forwards is not None:
        parse_uint(max_forwards, 255, "Max-Forwards")
    expires = headers.get("Expires")
    if expires is not None:
        parse_uint(expires, _MAX_UINT32, "Expires")
