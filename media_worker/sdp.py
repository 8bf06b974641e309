"""SDP session descriptions (RFC 8866): ``SessionDescription.parse(text)`` and ``str(description)``.

Round trip: for a well-formed capture (lines in RFC 8866 §5 order, single spaces between fields, one line
ending style) ``str(SessionDescription.parse(text)) == text``. Unknown attributes and the optional lines
(i=, u=, e=, p=, r=, z=, k=) are kept in order; whatever whitespace follows the last line is kept verbatim.
Lines that come out of order are accepted and printed back in RFC order.

Anything that is not SDP raises ``SdpError``; its message names the line number and type, never the value
(an ``a=crypto`` line carries keys).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final, TypeVar

from media_worker.sdes import CryptoAttribute, SdesError
from media_worker.sdp_fields import (
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    Origin,
    RtcpAttribute,
    RtpMap,
    SdpError,
    Timing,
    attribute_value,
    direction_of,
)

__all__ = [
    "MAX_SDP_LENGTH",
    "Attribute",
    "Bandwidth",
    "Connection",
    "Direction",
    "MediaDescription",
    "Origin",
    "RtcpAttribute",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "Timing",
]

MAX_SDP_LENGTH: Final = 65_536
"""Larger bodies are refused before parsing; a real audio offer is well under 4 KiB."""

_LINE: Final = re.compile(r"([a-z])=(.*)", re.DOTALL)
_TOKEN: Final = re.compile(r"[\x21-\x7e]+")
_NUMBER: Final = re.compile(r"[0-9]{1,20}")
_ATTR_NAME: Final = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # RFC 8866 §9 token, minus ":"
_RTPMAP: Final = re.compile(r"([0-9]{1,3}) ([^/ ]+)/([0-9]{1,6})(?:/([0-9]{1,2}))?")
# Whatever follows the last line's ending: blanks inside the last line belong to that line's value.
_TRAILER: Final = re.compile(r"\r?\n[\r\n \t]*\Z")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One ``m=`` section: ``m=<media> <port>[/<count>] <proto> <fmt> ...`` and its lines (RFC 8866 §5.14)."""

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None
    information: str | None = None
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    encryption_key: str | None = field(default=None, repr=False)
    attributes: tuple[Attribute, ...] = ()

    def attributes_named(self, name: str) -> tuple[Attribute, ...]:
        return tuple(a for a in self.attributes if a.name == name)

    @property
    def payload_types(self) -> tuple[int, ...]:
        """The formats as RTP payload type numbers; raises SdpError if one is not 0..127."""
        try:
            types = tuple(int(f) for f in self.formats)
        except ValueError:
            raise SdpError("m= format is not an RTP payload type number") from None
        if any(not 0 <= pt <= 127 for pt in types):
            raise SdpError("m= payload type outside 0..127")
        return types

    def rtpmaps(self) -> dict[int, RtpMap]:
        """All ``a=rtpmap`` lines by payload type; raises SdpError on a malformed one."""
        maps: dict[int, RtpMap] = {}
        for attribute in self.attributes_named("rtpmap"):
            match = _RTPMAP.fullmatch(attribute.value or "")
            if match is None:
                raise SdpError("malformed a=rtpmap attribute")
            channels = None if match.group(4) is None else int(match.group(4))
            pt = int(match.group(1))
            maps.setdefault(pt, RtpMap(pt, match.group(2), int(match.group(3)), channels))
        return maps

    def rtpmap(self, payload_type: int) -> RtpMap | None:
        return self.rtpmaps().get(payload_type)

    def fmtp(self, payload_type: int) -> str | None:
        """The format parameters of ``a=fmtp:<pt> <params>``, or None."""
        for attribute in self.attributes_named("fmtp"):
            pt, _, params = (attribute.value or "").partition(" ")
            if pt == str(payload_type):
                return params
        return None

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in whole milliseconds (RFC 8866 §6.4); raises SdpError if it is not a number."""
        value = attribute_value(self.attributes, "ptime")
        if value is None:
            return None
        try:
            return int(float(value))
        except (ValueError, OverflowError):  # "nan", "inf"
            raise SdpError("a=ptime is not a number") from None

    @property
    def direction(self) -> Direction | None:
        """The direction attribute of this section, or None if it has none (inherit the session's)."""
        return direction_of(self.attributes)

    @property
    def rtcp(self) -> RtcpAttribute | None:
        """``a=rtcp`` (RFC 3605), or None; raises SdpError if malformed."""
        value = attribute_value(self.attributes, "rtcp")
        if value is None:
            return None
        port, *rest = value.split(" ")
        if not _NUMBER.fullmatch(port) or int(port) > 65535 or len(rest) not in (0, 3):
            raise SdpError("malformed a=rtcp attribute")
        return RtcpAttribute(int(port), Connection(*rest) if rest else None)

    def crypto(self) -> tuple[CryptoAttribute, ...]:
        """Every ``a=crypto`` line (RFC 4568); raises SdpError if one breaks the grammar."""
        try:
            return tuple(CryptoAttribute.parse(a.value or "") for a in self.attributes_named("crypto"))
        except SdesError as exc:
            raise SdpError(str(exc)) from None

    def lines(self) -> list[str]:
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        out = [f"m={' '.join((self.kind, port, self.proto, *self.formats))}"]
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"b={b}" for b in self.bandwidths)
        if self.encryption_key is not None:
            out.append(f"k={self.encryption_key}")
        out.extend(f"a={a}" for a in self.attributes)
        return out


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole SDP body. Build one directly or with ``parse``; ``str()`` gives the wire text."""

    origin: Origin
    session_name: str = "-"
    version: int = 0
    information: str | None = None
    uri: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    timing: tuple[Timing, ...] = (Timing(),)
    time_zones: str | None = None
    encryption_key: str | None = field(default=None, repr=False)
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    line_ending: str = "\r\n"
    trailer: str | None = None
    """Text after the last line's content; None means one ``line_ending`` (RFC 8866 §5: CRLF after each)."""

    @property
    def direction(self) -> Direction | None:
        """The session-level direction attribute, or None (RFC 3264 §5.1 default is sendrecv)."""
        return direction_of(self.attributes)

    def media_direction(self, media: MediaDescription) -> Direction:
        """The direction in force for ``media``: its own, else the session's, else sendrecv."""
        return media.direction or self.direction or Direction.SENDRECV

    def media_connection(self, media: MediaDescription) -> Connection | None:
        """The ``c=`` in force for ``media``: its own, else the session's (RFC 8866 §5.7)."""
        return media.connection or self.connection

    def __str__(self) -> str:
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        optional = (("i", self.information), ("u", self.uri))
        lines.extend(f"{kind}={value}" for kind, value in optional if value is not None)
        lines.extend(f"e={e}" for e in self.emails)
        lines.extend(f"p={p}" for p in self.phones)
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines.extend(f"b={b}" for b in self.bandwidths)
        for timing in self.timing:
            lines.append(f"t={timing.start} {timing.stop}")
            lines.extend(f"r={r}" for r in timing.repeats)
        if self.time_zones is not None:
            lines.append(f"z={self.time_zones}")
        if self.encryption_key is not None:
            lines.append(f"k={self.encryption_key}")
        lines.extend(f"a={a}" for a in self.attributes)
        for media in self.media:
            lines.extend(media.lines())
        trailer = self.line_ending if self.trailer is None else self.trailer
        return self.line_ending.join(lines) + trailer

    @classmethod
    def parse(cls, text: str | bytes) -> SessionDescription:
        """Parse an SDP body (str, or UTF-8 bytes); raises SdpError, never another exception type."""
        lines, line_ending, trailer = _split_lines(text)
        sections = [_Section(_SESSION_TYPES, "")]
        for number, line in enumerate(lines, 1):
            match = _LINE.fullmatch(line)
            if match is None:
                raise SdpError(f"line {number}: not a '<type>=<value>' line")
            kind, value = match.groups()
            if (number == 1) != (kind == "v"):
                raise SdpError(f"line {number}: a description starts with v= and has only one (RFC 8866 §5)")
            if kind == "m":
                sections.append(_Section(_MEDIA_TYPES, value, number))
            else:
                sections[-1].add(number, kind, value)
        session = sections[0]
        missing = [f"{kind}=" for kind in "vost" if kind not in session.lines]
        if missing:
            raise SdpError(f"missing mandatory line(s) {', '.join(missing)} (RFC 8866 §5)")
        if session.one("v", str) != "0":
            raise SdpError("line 1: only SDP version 0 is defined (RFC 8866 §5.1)")
        return cls(
            origin=_convert(*session.lines["o"][0], "o", _origin),
            session_name=session.lines["s"][0][1],
            information=session.one("i", str),
            uri=session.one("u", str),
            emails=session.all("e", str),
            phones=session.all("p", str),
            connection=session.one("c", _connection),
            bandwidths=session.all("b", _bandwidth),
            timing=session.timing(),
            time_zones=session.one("z", str),
            encryption_key=session.one("k", str),
            attributes=session.all("a", _attribute),
            media=tuple(section.media() for section in sections[1:]),
            line_ending=line_ending,
            trailer=trailer,
        )


# RFC 8866 §5: the line types each part may hold, and whether a type may repeat there.
_SESSION_TYPES: Final = dict.fromkeys("vosiuczk", False) | dict.fromkeys("epbtra", True)
_MEDIA_TYPES: Final = dict.fromkeys("ick", False) | dict.fromkeys("ba", True)


def _split_lines(text: str | bytes) -> tuple[list[str], str, str | None]:
    """Lines without their endings, the line ending in use, and the trailing whitespace (None if plain)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise SdpError("SDP is not valid UTF-8") from None
    if len(text) > MAX_SDP_LENGTH:
        raise SdpError(f"SDP is longer than {MAX_SDP_LENGTH} characters")
    if "\x00" in text:
        raise SdpError("SDP contains a NUL character")
    match = _TRAILER.search(text)
    end = len(text) if match is None else match.start()
    body, trailer = text[:end], text[end:]
    if not body.strip():
        raise SdpError("SDP is empty")
    # RFC 8866 §5: lines end in CRLF, but parsers should also accept a bare LF.
    line_ending = "\r\n" if "\r\n" in body or trailer.startswith("\r\n") else "\n"
    lines = [line.removesuffix("\r") for line in body.split("\n")]
    if any("\r" in line for line in lines):
        raise SdpError("SDP contains a bare CR inside a line")
    return lines, line_ending, None if trailer == line_ending else trailer


class _Section:
    """The raw lines of the session part or of one media section, by type, with their line numbers."""

    def __init__(self, allowed: dict[str, bool], media_line: str, number: int = 0) -> None:
        self.allowed = allowed
        self.lines: dict[str, list[tuple[int, str]]] = {}
        self.media_line = (number, media_line)

    def add(self, number: int, kind: str, value: str) -> None:
        if kind not in self.allowed:
            raise SdpError(f"line {number}: {kind}= is unknown or not allowed here (RFC 8866 §5)")
        found = self.lines.setdefault(kind, [])
        if found and not self.allowed[kind]:
            raise SdpError(f"line {number}: only one {kind}= line is allowed here")
        if kind == "r" and "t" not in self.lines:
            raise SdpError(f"line {number}: r= must follow a t= line")
        found.append((number, value))

    def one(self, kind: str, convert: Callable[[str], _T]) -> _T | None:
        found = self.lines.get(kind)
        return None if not found else _convert(*found[0], kind, convert)

    def all(self, kind: str, convert: Callable[[str], _T]) -> tuple[_T, ...]:
        return tuple(_convert(number, value, kind, convert) for number, value in self.lines.get(kind, ()))

    def timing(self) -> tuple[Timing, ...]:
        """t= lines, each with the r= lines that follow it (RFC 8866 §5.10)."""
        times = self.lines.get("t", [])
        repeats = self.lines.get("r", [])
        bounds = [n for n, _ in times[1:]] + [1 << 62]
        return tuple(
            replace(
                _convert(number, value, "t", _timing),
                repeats=tuple(r for n, r in repeats if number < n < bound),
            )
            for (number, value), bound in zip(times, bounds, strict=True)
        )

    def media(self) -> MediaDescription:
        kind, port, count, proto, formats = _convert(*self.media_line, "m", _media_line)
        return MediaDescription(
            kind=kind,
            port=port,
            proto=proto,
            formats=formats,
            port_count=count,
            information=self.one("i", str),
            connection=self.one("c", _connection),
            bandwidths=self.all("b", _bandwidth),
            encryption_key=self.one("k", str),
            attributes=self.all("a", _attribute),
        )


def _convert(number: int, value: str, kind: str, convert: Callable[[str], _T]) -> _T:
    try:
        return convert(value)
    except SdpError as exc:
        raise SdpError(f"line {number} ({kind}=): {exc}") from None


def _fields(value: str, count: int) -> list[str]:
    """Split on single spaces (RFC 8866 §9 puts exactly one SP between fields)."""
    parts = value.split(" ")
    if len(parts) != count or any(not _TOKEN.fullmatch(p) for p in parts):
        raise SdpError("wrong number of fields or stray whitespace")
    return parts


def _number(text: str, maximum: int | None = None) -> int:
    if not _NUMBER.fullmatch(text) or (maximum is not None and int(text) > maximum):
        raise SdpError("expected a number")
    return int(text)


def _origin(value: str) -> Origin:
    username, session_id, version, network_type, address_type, address = _fields(value, 6)
    return Origin(username, session_id, _number(version), network_type, address_type, address)


def _connection(value: str) -> Connection:
    return Connection(*_fields(value, 3))


def _bandwidth(value: str) -> Bandwidth:
    kind, sep, amount = value.partition(":")
    if not sep or not _TOKEN.fullmatch(kind):
        raise SdpError("expected <bwtype>:<bandwidth>")
    return Bandwidth(kind, _number(amount))


def _timing(value: str) -> Timing:
    start, stop = _fields(value, 2)
    return Timing(_number(start), _number(stop))


def _attribute(value: str) -> Attribute:
    name, sep, rest = value.partition(":")
    if not _ATTR_NAME.fullmatch(name):
        raise SdpError("malformed attribute name")
    return Attribute(name, rest if sep else None)


def _media_line(value: str) -> tuple[str, int, int | None, str, tuple[str, ...]]:
    parts = value.split(" ")
    if len(parts) < 3 or any(not _TOKEN.fullmatch(p) for p in parts):
        raise SdpError("expected <media> <port>[/<count>] <proto> <fmt> ...")
    port, sep, count = parts[1].partition("/")
    return parts[0], _number(port, 65535), _number(count) if sep else None, parts[2], tuple(parts[3:])
