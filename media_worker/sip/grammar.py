"""RFC 3261 §25.1 ABNF fragments used by the SIP message layer, as character sets and small helpers.

Each set or pattern quotes the rule it transcribes. Helpers raise :class:`ParseError` for peer input; they
never let an IndexError, ValueError or UnicodeError escape.
"""

from __future__ import annotations

import ipaddress
import re
import string
from typing import Final

from media_worker.sip.exceptions import ParseError

__all__ = [
    "HNV_UNRESERVED",
    "PARAM_UNRESERVED",
    "PASSWORD_UNRESERVED",
    "TOKEN_CHARS",
    "UNRESERVED",
    "USER_UNRESERVED",
    "escape",
    "format_params",
    "has_control_chars",
    "is_quoted_string",
    "is_token",
    "parse_hostport",
    "parse_params",
    "parse_uint",
    "split_top_level",
    "unescape",
]

# alphanum = ALPHA / DIGIT
_ALPHANUM: Final = frozenset(string.ascii_letters + string.digits)
# mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
_MARK: Final = frozenset("-_.!~*'()")
# unreserved = alphanum / mark
UNRESERVED: Final = _ALPHANUM | _MARK
# user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
USER_UNRESERVED: Final = frozenset("&=+$,;?/")
# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
PASSWORD_UNRESERVED: Final = frozenset("&=+$,")
# param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
PARAM_UNRESERVED: Final = frozenset("[]/:&+$")
# hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"
HNV_UNRESERVED: Final = frozenset("[]/?:+$")
# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS: Final = _ALPHANUM | frozenset("-.!%*_+`'~")

# Raw control characters have no place in a SIP head (HTAB is LWS; CR/LF only end lines).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE; quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
_QUOTED_STRING = re.compile(r'"(?:[^"\\\r\n]|\\[^\r\n])*"')
_ESCAPED = re.compile(r"%([0-9A-Fa-f]{2})")
# hostname / IPv4address: checked loosely here, then for shape in _check_hostname (no backtracking regexes).
_HOSTNAME_CHARS = re.compile(r"[A-Za-z0-9.\-]+")
_DIGITS = re.compile(r"[0-9]+")
_GEN_VALUE_DELIMITERS: Final = frozenset(';,"<>\\')
# Longest decimal we ever accept (2**32-1 has 10 digits); guards int() against huge inputs.
_MAX_DIGITS: Final = 10


def is_token(text: str) -> bool:
    """True if ``text`` is a non-empty RFC 3261 token."""
    return bool(text) and all(char in TOKEN_CHARS for char in text)


def is_quoted_string(text: str) -> bool:
    """True if ``text`` is exactly one quoted-string (quotes included)."""
    return _QUOTED_STRING.fullmatch(text) is not None


def has_control_chars(text: str) -> bool:
    """True if ``text`` holds a control character other than HTAB."""
    return _CONTROL.search(text) is not None


def parse_uint(text: str, maximum: int, what: str) -> int:
    """Parse ``1*DIGIT`` no larger than ``maximum``."""
    if not _DIGITS.fullmatch(text):
        raise ParseError(f"{what} is not a decimal number: {text[:40]!r}")
    if len(text.lstrip("0")) > _MAX_DIGITS or int(text) > maximum:
        raise ParseError(f"{what} is larger than {maximum}")
    return int(text)


def escape(text: str, allowed: frozenset[str]) -> str:
    """Percent-encode (§25.1 escaped) every character of ``text`` outside ``allowed``, as UTF-8 octets.

    Characters that :func:`unescape` made from non-UTF-8 octets (surrogate escapes) are written back verbatim.
    """
    out: list[str] = []
    for char in text:
        if char in allowed:
            out.append(char)
        else:
            out.extend(f"%{octet:02X}" for octet in _octets(char))
    return "".join(out)


def _octets(char: str) -> bytes:
    try:
        return char.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no decoder produced: keep it recoverable
        return char.encode("utf-8", "surrogatepass")


def unescape(text: str) -> str:
    """Decode §25.1 ``escaped`` octets; a lone or malformed ``%`` is a ParseError."""
    if "%" not in text:
        return text
    if text.count("%") != len(_ESCAPED.findall(text)):
        raise ParseError(f"malformed %-escape in {text[:60]!r}")
    octets = bytearray()
    index = 0
    while index < len(text):
        if text[index] == "%":
            octets.append(int(text[index + 1 : index + 3], 16))
            index += 3
        else:
            octets.extend(_octets(text[index]))
            index += 1
    # Octets that are not UTF-8 stay recoverable as surrogate escapes, so escape() writes them back unchanged.
    return octets.decode("utf-8", "surrogateescape")


def split_top_level(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside quoted-strings and ``<...>``; pieces are not stripped.

    An unterminated quoted-string or unbalanced angle bracket is a ParseError.
    """
    pieces: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    index = 0
    while index < len(text):
        char = text[index]
        if in_quotes:
            if char == "\\":
                index += 1
            elif char == '"':
                in_quotes = False
        elif char == '"':
            in_quotes = True
        elif char == "<":
            if in_angle:
                raise ParseError(f"nested '<' in {text[:60]!r}")
            in_angle = True
        elif char == ">":
            if not in_angle:
                raise ParseError(f"unbalanced '>' in {text[:60]!r}")
            in_angle = False
        elif char == separator and not in_angle:
            pieces.append(text[start:index])
            start = index + 1
        index += 1
    if in_quotes:
        raise ParseError(f"unterminated quoted string in {text[:60]!r}")
    if in_angle:
        raise ParseError(f"unterminated '<' in {text[:60]!r}")
    pieces.append(text[start:])
    return pieces


def parse_params(text: str) -> tuple[tuple[str, str | None], ...]:
    """Parse header parameters ``*( SEMI generic-param )`` (§25.1); ``text`` is empty or starts with ';'.

    generic-param = token [ EQUAL gen-value ]; gen-value = token / host / quoted-string. Values are kept as
    written (a quoted-string keeps its quotes) so that serialising reproduces them.
    """
    stripped = text.strip(" \t")
    if not stripped:
        return ()
    if not stripped.startswith(";"):
        raise ParseError(f"expected ';' before parameters in {text[:60]!r}")
    params: list[tuple[str, str | None]] = []
    for piece in split_top_level(stripped[1:], ";"):
        name, equals, value = piece.partition("=")
        name = name.strip(" \t")
        if not is_token(name):
            raise ParseError(f"bad parameter name {name[:40]!r}")
        if not equals:
            params.append((name, None))
            continue
        value = value.strip(" \t")
        if not (is_quoted_string(value) or _is_gen_value(value)):
            raise ParseError(f"bad value for parameter {name!r}")
        params.append((name, value))
    return tuple(params)


def _is_gen_value(value: str) -> bool:
    # gen-value = token / host. Tolerance: any visible character except the delimiters is accepted, because
    # peers write URI-style values (base64 with '/', '+', '=') into header parameters of addr-spec addresses.
    return bool(value) and not any(char in _GEN_VALUE_DELIMITERS or char.isspace() for char in value)


def format_params(params: tuple[tuple[str, str | None], ...]) -> str:
    """Serialise parameters as ``;name=value;flag``."""
    return "".join(f";{name}" if value is None else f";{name}={value}" for name, value in params)


def parse_hostport(text: str) -> tuple[str, int | None]:
    """Parse ``hostport = host [ ":" port ]``; IPv6 references keep their brackets."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError(f"unterminated IPv6 reference in {text[:60]!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ParseError(f"bad IPv6 address {host[:60]!r}") from None
    else:
        host, colon, port_text = text.partition(":")
        rest = colon + port_text
        _check_hostname(host)
    if not rest:
        return host, None
    if not rest.startswith(":"):
        raise ParseError(f"unexpected text after host in {text[:60]!r}")
    return host, parse_uint(rest[1:], 65_535, "port")


def _check_hostname(host: str) -> None:
    # hostname = *( domainlabel "." ) toplabel [ "." ]
    # domainlabel = alphanum / alphanum *( alphanum / "-" ) alphanum
    if not _HOSTNAME_CHARS.fullmatch(host):
        raise ParseError(f"bad host {host[:60]!r}")
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if any(not label or label[0] == "-" or label[-1] == "-" for label in labels):
        raise ParseError(f"bad host {host[:60]!r}")
