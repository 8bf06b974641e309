"""The header section of a SIP message: an ordered, case-insensitive multi-map (RFC 3261 §7.3)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from media_worker.sip.exceptions import LocalProtocolError
from media_worker.sip.grammar import has_control_chars, is_token, split_top_level
from media_worker.sip.redaction import redact_uri

__all__ = ["COMPACT_FORMS", "Headers", "canonical_name"]

# RFC 3261 §7.3.3 and §20, RFC 3265 (o, u), RFC 3515 (r), RFC 3892 (b), RFC 4028 (x).
COMPACT_FORMS: Final[dict[str, str]] = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "x": "Session-Expires",
}

# Names whose conventional spelling is not plain Title-Case.
_SPECIAL_NAMES: Final[dict[str, str]] = {
    name.lower(): name
    for name in ("Call-ID", "CSeq", "WWW-Authenticate", "MIME-Version", "Min-SE", "RAck", "RSeq", "SIP-ETag")
}

# Headers whose field values are comma-separated lists (§7.3.1). WWW-Authenticate, Authorization and their
# proxy twins are deliberately absent: their digest parameters contain commas.
_LIST_HEADERS: Final = frozenset(
    name.lower()
    for name in (
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Call-Info",
        "Contact",
        "Content-Encoding",
        "Content-Language",
        "Error-Info",
        "In-Reply-To",
        "Path",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Require",
        "Route",
        "Service-Route",
        "Supported",
        "Unsupported",
        "Via",
        "Warning",
    )
)


def canonical_name(name: str) -> str:
    """Expand compact forms and normalise case: "v" -> "Via", "call-id" -> "Call-ID"; X- names kept."""
    lowered = name.lower()
    if lowered in COMPACT_FORMS:
        return COMPACT_FORMS[lowered]
    if lowered in _SPECIAL_NAMES:
        return _SPECIAL_NAMES[lowered]
    if lowered.startswith("x-"):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _key(name: str) -> str:
    return canonical_name(name).lower()


def _checked(name: str, value: str) -> tuple[str, str]:
    # Header injection guard: a CR or LF in a value would start a new header line on the wire.
    if not is_token(name):
        raise LocalProtocolError(f"header name {name!r} is not a token")
    if has_control_chars(value) or "\r" in value:
        raise LocalProtocolError(f"header {name} value contains control characters")
    return canonical_name(name), value


class Headers:
    """Ordered header fields; names are case-insensitive, compact forms are stored under their full names."""

    __slots__ = ("_items",)
    __hash__ = None  # type: ignore[assignment]  # mutable container: not hashable

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [_checked(name, value) for name, value in items]

    def get(self, name: str) -> str | None:
        """First field value of ``name`` (unsplit), or None."""
        key = _key(name)
        return next((value for item, value in self._items if item.lower() == key), None)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order; list-valued headers are split on top-level commas.

        Raises ParseError if a list-valued field has an unterminated quoted string or unbalanced ``<>``.
        """
        key = _key(name)
        values = [value for item, value in self._items if item.lower() == key]
        if key not in _LIST_HEADERS:
            return values
        split: list[str] = []
        for value in values:
            split.extend(piece.strip(" \t") for piece in split_top_level(value, ",") if piece.strip(" \t"))
        return split

    def add(self, name: str, value: str) -> None:
        """Append a field; LocalProtocolError if the name is not a token or the value holds CR/LF/controls."""
        self._items.append(_checked(name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every field called ``name`` with one, at the position of the first (else at the end)."""
        checked = _checked(name, value)
        key = checked[0].lower()
        items: list[tuple[str, str]] = []
        placed = False
        for item in self._items:
            if item[0].lower() != key:
                items.append(item)
            elif not placed:
                items.append(checked)
                placed = True
        if not placed:
            items.append(checked)
        self._items = items

    def remove(self, name: str) -> None:
        """Remove every field called ``name`` (no error if absent)."""
        key = _key(name)
        self._items = [item for item in self._items if item[0].lower() != key]

    def copy(self) -> Headers:
        """An independent copy."""
        clone = Headers()
        clone._items = list(self._items)
        return clone

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _key(name)
        return any(item.lower() == key for item, _ in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    def __repr__(self) -> str:
        return redact_uri(f"Headers({self._items!r})")
