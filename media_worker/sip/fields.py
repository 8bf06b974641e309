"""Structured header field values: name-addr (From/To/Contact/Route), Via and CSeq (RFC 3261 §20, §25.1)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from media_worker.sip.exceptions import LocalProtocolError, ParseError
from media_worker.sip.grammar import (
    format_params,
    is_token,
    parse_hostport,
    parse_params,
    parse_uint,
    split_top_level,
)
from media_worker.sip.redaction import redact_params, redact_uri
from media_worker.sip.uri import SipUri

__all__ = ["CSeq", "NameAddr", "Via", "check_name_addr", "split_name_addr"]

Param = tuple[str, str | None]

# RFC 3261 §8.1.1.5: CSeq sequence numbers are below 2**31.
MAX_CSEQ: Final = 2**31 - 1
# quoted-string at the start of a value (display-name form).
_LEADING_QUOTED = re.compile(r'"(?:[^"\\\r\n]|\\[^\r\n])*"')
# absoluteURI = scheme ":" ...; scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"]+")
# sent-protocol = protocol-name SLASH protocol-version SLASH transport, SLASH = SWS "/" SWS, then LWS sent-by
_SENT_PROTOCOL = re.compile(r"SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*([^ \t/;]+)[ \t]+", re.IGNORECASE)
_COLON_WITH_SPACE = re.compile(r"[ \t]*:[ \t]*")


def _param(params: tuple[Param, ...], name: str) -> str | None:
    wanted = name.lower()
    return next(("" if value is None else value for key, value in params if key.lower() == wanted), None)


def split_name_addr(text: str) -> tuple[str | None, str, tuple[Param, ...]]:
    """Split ``name-addr / addr-spec`` followed by header params into (display name, URI text, params).

    The URI may have any scheme. §20.10: in addr-spec form the URI cannot contain ',', '?' or ';' (a ';'
    starts the header parameters), so such URIs must be enclosed in ``<>``.
    """
    text = text.strip(" \t")
    display: str | None = None
    quoted = _LEADING_QUOTED.match(text)
    if quoted:
        display = quoted.group(0)[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        rest = text[quoted.end() :].lstrip(" \t")
        if not rest.startswith("<"):
            raise ParseError("display name must be followed by <URI>")
    elif text.startswith('"'):
        raise ParseError("unterminated quoted display name")
    else:
        rest = text
        angle = text.find("<")
        if angle >= 0:
            words = text[:angle].split()
            if not all(is_token(word) for word in words):
                raise ParseError("display name holds characters that need quoting")
            display = " ".join(words) if words else None
            rest = text[angle:]
    if rest.startswith("<"):
        end = rest.find(">")
        if end < 0:
            raise ParseError("unterminated '<' in address")
        uri_text, params_text = rest[1:end], rest[end + 1 :]
    else:
        uri_text, semicolon, params_text = rest.partition(";")
        uri_text, params_text = uri_text.rstrip(" \t"), semicolon + params_text
        if "," in uri_text or "?" in uri_text:
            raise ParseError("an address with ',' or '?' must be enclosed in <>")
    if not _ABSOLUTE_URI.fullmatch(uri_text):
        raise ParseError(f"bad URI in address: {uri_text[:60]!r}")
    return display, uri_text, parse_params(params_text)


def check_name_addr(text: str) -> None:
    """Validate an address of any scheme; sip/sips URIs are checked fully."""
    _, uri_text, _ = split_name_addr(text)
    if uri_text.partition(":")[0].lower() in ("sip", "sips"):
        SipUri.parse(uri_text)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """Address with optional display name and header parameters (From, To, Contact, Route, Record-Route)."""

    uri: SipUri
    display_name: str | None = None
    params: tuple[Param, ...] = ()

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Parse the name-addr or addr-spec form (§20.10); the URI must be sip or sips."""
        display, uri_text, params = split_name_addr(text)
        return cls(SipUri.parse(uri_text), display, params)

    def __str__(self) -> str:
        display = ""
        if self.display_name is not None:
            escaped = self.display_name.replace("\\", "\\\\").replace('"', '\\"')
            display = f'"{escaped}" '
        return f"{display}<{self.uri}>{format_params(self.params)}"

    def __repr__(self) -> str:
        params = redact_params(self.params)
        return redact_uri(
            f"NameAddr(uri={self.uri!r}, display_name={self.display_name!r}, params={params!r})"
        )

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (§19.3), or None."""
        return self.param("tag") or None

    def with_tag(self, tag: str) -> NameAddr:
        """Copy with the tag parameter set (replacing any existing one)."""
        if not is_token(tag):
            raise LocalProtocolError(f"tag {tag!r} is not a token")
        params = [(key, value) for key, value in self.params if key.lower() != "tag"]
        return replace(self, params=(*params, ("tag", tag)))

    def param(self, name: str) -> str | None:
        """Header parameter value (case-insensitive name); "" for a flag, None if absent."""
        return _param(self.params, name)


@dataclass(frozen=True, slots=True)
class Via:
    """One Via field value (§20.42): ``SIP/2.0/<transport> host[:port];params``."""

    transport: str
    host: str
    port: int | None = None
    params: tuple[Param, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse a single via-parm; a comma-separated list is rejected (use Headers.get_all("Via"))."""
        text = text.strip(" \t")
        if len(split_top_level(text, ",")) != 1:
            raise ParseError("Via.parse takes one via-parm, got a list")
        match = _SENT_PROTOCOL.match(text)
        if not match or not is_token(match.group(1)):
            raise ParseError(f"bad Via sent-protocol: {text[:60]!r}")
        sent_by, _, params_text = text[match.end() :].partition(";")
        sent_by = _COLON_WITH_SPACE.sub(":", sent_by.strip(" \t"))
        host, port = parse_hostport(sent_by)
        params_text = ";" + params_text if params_text or text.endswith(";") else ""
        return cls(match.group(1).upper(), host, port, parse_params(params_text))

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter (§8.1.1.7), or None."""
        return self.param("branch") or None

    def param(self, name: str) -> str | None:
        """Via parameter value (case-insensitive name); "" for a flag such as ``rport``, None if absent."""
        return _param(self.params, name)


@dataclass(frozen=True, slots=True)
class CSeq:
    """The CSeq header (§20.16): sequence number and method."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Parse ``1*DIGIT LWS Method``."""
        parts = text.split()
        if len(parts) != 2:
            raise ParseError(f"CSeq must be '<number> <method>', got {text[:40]!r}")
        if not is_token(parts[1]):
            raise ParseError("CSeq method is not a token")
        return cls(parse_uint(parts[0], MAX_CSEQ, "CSeq number"), parts[1])

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"
