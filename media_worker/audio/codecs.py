"""The audio codecs we negotiate, by SDP encoding name (RFC 3551 §6 static payload types)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from .g711 import decode_alaw, decode_ulaw, encode_alaw, encode_ulaw

__all__ = ["CODECS", "PCMA", "PCMU", "Codec", "codec_by_name"]


@dataclass(frozen=True, slots=True)
class Codec:
    """An audio codec: SDP name, static payload type, clock rate, and PCM (LE int16 bytes) converters."""

    name: str
    payload_type: int
    clock_rate: int
    encode: Callable[[bytes], bytes]
    decode: Callable[[bytes], bytes]


PCMU: Final = Codec("PCMU", 0, 8000, encode_ulaw, decode_ulaw)
PCMA: Final = Codec("PCMA", 8, 8000, encode_alaw, decode_alaw)
CODECS: Final[dict[str, Codec]] = {c.name: c for c in (PCMU, PCMA)}


def codec_by_name(name: str) -> Codec | None:
    """The codec for an SDP encoding name (case-insensitive, RFC 4566 §6), or None if unsupported."""
    return CODECS.get(name.upper())
