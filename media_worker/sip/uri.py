"""SIP and SIPS URIs (RFC 3261 §19.1) and the Amazon Chime join URIs built from them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

from media_worker.sip.exceptions import LocalProtocolError, ParseError
from media_worker.sip.grammar import (
    HNV_UNRESERVED,
    PARAM_UNRESERVED,
    PASSWORD_UNRESERVED,
    UNRESERVED,
    USER_UNRESERVED,
    escape,
    has_control_chars,
    parse_hostport,
    unescape,
)
from media_worker.sip.redaction import redact_params, redact_uri

__all__ = ["SipUri", "chime_join_uri", "chime_to_uri", "escape_param_value", "redact_uri"]

# paramchar = param-unreserved / unreserved / escaped
_PARAMCHAR: Final = PARAM_UNRESERVED | UNRESERVED
# Received parameter values may also hold a raw '=' (seen from peers that do not escape base64 padding): the
# first '=' already separated name from value, so it is unambiguous. We always write it as %3D.
_PARAM_VALUE_CHARS: Final = _PARAMCHAR | {"="}
_USER_CHARS: Final = UNRESERVED | USER_UNRESERVED
_PASSWORD_CHARS: Final = UNRESERVED | PASSWORD_UNRESERVED
# hname = 1*( hnv-unreserved / unreserved / escaped ); hvalue likewise, possibly empty
_HNV_CHARS: Final = HNV_UNRESERVED | UNRESERVED
# Characters that may never appear unescaped anywhere in a SIP URI.
_FORBIDDEN: Final = frozenset(' \t<>"\\{}|^`')

Param = tuple[str, str | None]


def escape_param_value(value: str) -> str:
    """Escape every character outside RFC 3261 paramchar; '+' and '/' stay literal, '=' becomes %3D."""
    return escape(value, _PARAMCHAR)


def _check_chars(text: str, allowed: frozenset[str], what: str) -> str:
    # Raw characters must be in the rule's set; '%' introduces an escape, validated by unescape().
    if any(char not in allowed and char != "%" for char in text):
        raise ParseError(f"invalid character in URI {what}")
    return unescape(text)


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI; components are held unescaped."""

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: tuple[Param, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse ``SIP-URI`` / ``SIPS-URI`` (§25.1); anything else raises ParseError."""
        scheme, colon, rest = text.partition(":")
        if not colon or scheme.lower() not in ("sip", "sips"):
            raise ParseError(f"not a SIP URI: {text[:60]!r}")
        if has_control_chars(rest) or any(char in _FORBIDDEN for char in rest):
            raise ParseError(f"SIP URI contains characters that must be escaped: {text[:60]!r}")
        user: str | None = None
        password: str | None = None
        userinfo, at, hostpart = rest.partition("@")
        if at:
            user_text, has_password, password_text = userinfo.partition(":")
            if not user_text:
                raise ParseError("empty user part in SIP URI")
            user = _check_chars(user_text, _USER_CHARS, "user")
            password = _check_chars(password_text, _PASSWORD_CHARS, "password") if has_password else None
        else:
            hostpart = rest
        before_headers, question, headers_text = hostpart.partition("?")
        hostport, _, params_text = before_headers.partition(";")
        host, port = parse_hostport(hostport)
        params = _parse_uri_params(params_text) if params_text or before_headers.endswith(";") else ()
        headers = _parse_uri_headers(headers_text) if question else ()
        return cls(scheme.lower(), user, host, port, params, headers, password)

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user, _USER_CHARS))
            if self.password is not None:
                out.append(":" + escape(self.password, _PASSWORD_CHARS))
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params:
            out.append(";" + escape(name, _PARAMCHAR))
            if value is not None:
                out.append("=" + escape(value, _PARAMCHAR))
        if self.headers:
            out.append("?")
            out.append("&".join(f"{escape(n, _HNV_CHARS)}={escape(v, _HNV_CHARS)}" for n, v in self.headers))
        return "".join(out)

    def __repr__(self) -> str:
        return (
            f"SipUri(scheme={self.scheme!r}, user={self.user!r}, host={self.host!r}, port={self.port!r}, "
            f"params={redact_params(self.params)!r}, headers={redact_uri(repr(self.headers))})"
        )

    def param(self, name: str) -> str | None:
        """Value of URI parameter ``name`` (case-insensitive); "" for a flag parameter, None if absent."""
        wanted = name.lower()
        for key, value in self.params:
            if key.lower() == wanted:
                return "" if value is None else value
        return None

    def has_param(self, name: str) -> bool:
        """True if the URI carries parameter ``name`` (case-insensitive)."""
        return self.param(name) is not None

    def with_params(self, *params: Param) -> SipUri:
        """Copy with each parameter replaced in place (matched case-insensitively) or appended."""
        merged = list(self.params)
        for name, value in params:
            for index, (key, _) in enumerate(merged):
                if key.lower() == name.lower():
                    merged[index] = (name, value)
                    break
            else:
                merged.append((name, value))
        return replace(self, params=tuple(merged))

    def without_params(self, *names: str) -> SipUri:
        """Copy without the named parameters (case-insensitive)."""
        dropped = {name.lower() for name in names}
        return replace(self, params=tuple(p for p in self.params if p[0].lower() not in dropped))


def _parse_uri_params(text: str) -> tuple[Param, ...]:
    # uri-parameters = *( ";" uri-parameter ); uri-parameter = pname [ "=" pvalue ]; both 1*paramchar
    params: list[Param] = []
    for piece in text.split(";"):
        name, equals, value = piece.partition("=")
        if not name or (equals and not value):
            raise ParseError("empty URI parameter name or value")
        params.append(
            (
                _check_chars(name, _PARAMCHAR, "parameter"),
                _check_chars(value, _PARAM_VALUE_CHARS, "parameter") if equals else None,
            )
        )
    return tuple(params)


def _parse_uri_headers(text: str) -> tuple[tuple[str, str], ...]:
    # headers = "?" header *( "&" header ); header = hname "=" hvalue
    headers: list[tuple[str, str]] = []
    for piece in text.split("&"):
        name, equals, value = piece.partition("=")
        if not name or not equals:
            raise ParseError("URI header without name or '='")
        headers.append((_check_chars(name, _HNV_CHARS, "header"), _check_chars(value, _HNV_CHARS, "header")))
    return tuple(headers)


def _chime_base(join_number: str, host: str, join_token: str, port: int | None) -> None:
    if not join_number or not all(char in _USER_CHARS for char in join_number):
        raise LocalProtocolError(f"join number must be a non-empty SIP user part, got {join_number!r}")
    if not join_token:
        raise LocalProtocolError("join token must not be empty")
    try:
        parse_hostport(host)
    except ParseError:
        raise LocalProtocolError(f"bad Voice Connector host {host!r}") from None
    if port is not None and not 0 < port < 65_536:
        raise LocalProtocolError(f"bad port {port!r}")


def chime_join_uri(*, join_number: str, host: str, join_token: str, port: int | None = None) -> SipUri:
    """Request-URI that joins a Chime SDK meeting through a Voice Connector.

    ``sip:<join_number>@<host>[:port];transport=tls;X-chime-join-token=<token>``, the documented form and
    order.
    """
    _chime_base(join_number, host, join_token, port)
    return SipUri("sip", join_number, host, port, (("transport", "tls"), ("X-chime-join-token", join_token)))


def chime_to_uri(
    *, join_number: str, host: str, join_token: str, meeting_id: str | None = None, port: int | None = None
) -> SipUri:
    """To-header URI: ``sip:<join_number>@<host>;X-chime-join-token=<token>[;X-chime-meeting-id=<id>]``."""
    _chime_base(join_number, host, join_token, port)
    params: tuple[Param, ...] = (("X-chime-join-token", join_token),)
    if meeting_id is not None:
        params += (("X-chime-meeting-id", meeting_id),)
    return SipUri("sip", join_number, host, port, params)
