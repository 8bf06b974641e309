"""Wrap-aware arithmetic on RTP sequence numbers (16 bit) and timestamps/SSRC-space counters (32 bit).

RFC 3550 §A.1 compares sequence numbers modulo 2^16; RFC 1982 (serial number arithmetic) gives the rule used
here: ``a`` is "after" ``b`` when the forward distance from ``b`` to ``a`` is less than half the number space.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "uint16_add",
    "uint16_diff",
    "uint16_gt",
    "uint16_gte",
    "uint32_add",
    "uint32_diff",
    "uint32_gt",
    "uint32_gte",
]

_U16: Final = 1 << 16
_U16_HALF: Final = 1 << 15
_U32: Final = 1 << 32
_U32_HALF: Final = 1 << 31


def uint16_add(a: int, b: int) -> int:
    """``a + b`` modulo 2^16 (``b`` may be negative)."""
    return (a + b) % _U16


def uint16_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` in [-2^15, 2^15): positive when ``a`` is after ``b``."""
    d = (a - b) % _U16
    return d - _U16 if d >= _U16_HALF else d


def uint16_gt(a: int, b: int) -> bool:
    """True when ``a`` is strictly after ``b`` (RFC 1982 §3.2)."""
    return 0 < (a - b) % _U16 < _U16_HALF


def uint16_gte(a: int, b: int) -> bool:
    """True when ``a`` equals ``b`` or is after it."""
    return a == b or uint16_gt(a, b)


def uint32_add(a: int, b: int) -> int:
    """``a + b`` modulo 2^32 (``b`` may be negative)."""
    return (a + b) % _U32


def uint32_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` in [-2^31, 2^31): positive when ``a`` is after ``b``."""
    d = (a - b) % _U32
    return d - _U32 if d >= _U32_HALF else d


def uint32_gt(a: int, b: int) -> bool:
    """True when ``a`` is strictly after ``b`` (RFC 1982 §3.2)."""
    return 0 < (a - b) % _U32 < _U32_HALF


def uint32_gte(a: int, b: int) -> bool:
    """True when ``a`` equals ``b`` or is after it."""
    return a == b or uint32_gt(a, b)
