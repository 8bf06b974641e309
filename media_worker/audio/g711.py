"""G.711 µ-law (PCMU) and A-law (PCMA) codecs (ITU-T G.711; RTP payload types 0 and 8, RFC 3551 §4.5.14).

Whole-frame lookup tables in numpy instead of ``audioop`` (deprecated in 3.11, removed in 3.13). Encoding
indexes a 65536-entry table by the 16-bit sample; decoding indexes a 256-entry table by the code. The
tables are built once at import from the G.711 segment rules, with the conventions of the ITU-T G.191
reference software: 16-bit linear input is cut to 14 bits (µ-law) or 13 bits (A-law), a negative sample's
magnitude is its one's complement (so -1 and 0 fall in mirror-image intervals), and decoding returns the
interval midpoint scaled back to 16 bits.

PCM is little-endian signed 16-bit (``bytes``) or an ``int16`` numpy array.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "alaw_to_ulaw",
    "decode_alaw",
    "decode_alaw_array",
    "decode_ulaw",
    "decode_ulaw_array",
    "encode_alaw",
    "encode_alaw_array",
    "encode_ulaw",
    "encode_ulaw_array",
    "ulaw_to_alaw",
]

Int16Array = npt.NDArray[np.int16]
_PCM_DTYPE: Final = np.dtype("<i2")


def _magnitudes() -> tuple[npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
    """For every 16-bit sample (indexed by its unsigned bit pattern): one's-complement magnitude and sign."""
    samples = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    negative = samples < 0
    return np.where(negative, ~samples, samples), negative


def _build_ulaw_encoder() -> npt.NDArray[np.uint8]:
    magnitude, negative = _magnitudes()
    biased = np.minimum((magnitude >> 2) + 33, 0x1FFF)  # 14-bit magnitude plus the µ-law bias of 33
    segment = np.searchsorted(np.array([64, 128, 256, 512, 1024, 2048, 4096]), biased, side="right")
    mantissa = (biased >> (segment + 1)) & 0x0F
    code: npt.NDArray[np.int64] = 0x7F - ((segment << 4) | mantissa)  # µ-law sends the complement
    return np.where(negative, code, code | 0x80).astype(np.uint8)


def _build_ulaw_decoder() -> Int16Array:
    code = np.arange(256, dtype=np.int32)
    inverted = ~code & 0xFF
    segment = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << segment) - 0x84  # interval midpoint, 16-bit scale
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


def _build_alaw_encoder() -> npt.NDArray[np.uint8]:
    magnitude, negative = _magnitudes()
    value = magnitude >> 4  # 12-bit magnitude (13-bit signed A-law input)
    segment = np.searchsorted(np.array([16, 32, 64, 128, 256, 512, 1024]), value, side="right")
    mantissa = (value >> np.maximum(segment - 1, 0)) & 0x0F  # segments 0 and 1 share step size 1
    code = (segment << 4) | mantissa
    code = np.where(negative, code, code | 0x80)
    return (code ^ 0x55).astype(np.uint8)  # even bits inverted on the line


def _build_alaw_decoder() -> Int16Array:
    code = np.arange(256, dtype=np.int32)
    value = code ^ 0x55
    segment = (value >> 4) & 0x07
    mantissa = value & 0x0F
    magnitude = np.where(
        segment == 0,
        (mantissa << 4) + 8,
        ((mantissa + 16) << 4) + 8 << np.maximum(segment - 1, 0),
    )
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


_ULAW_ENCODE: Final = _build_ulaw_encoder()
_ULAW_DECODE: Final = _build_ulaw_decoder()
_ALAW_ENCODE: Final = _build_alaw_encoder()
_ALAW_DECODE: Final = _build_alaw_decoder()
_ULAW_TO_ALAW: Final = _ALAW_ENCODE[_ULAW_DECODE.view(np.uint16)].tobytes()
_ALAW_TO_ULAW: Final = _ULAW_ENCODE[_ALAW_DECODE.view(np.uint16)].tobytes()


def encode_ulaw_array(samples: Int16Array) -> bytes:
    """µ-law encode int16 samples."""
    return _ULAW_ENCODE[samples.view(np.uint16)].tobytes()


def encode_alaw_array(samples: Int16Array) -> bytes:
    """A-law encode int16 samples."""
    return _ALAW_ENCODE[samples.view(np.uint16)].tobytes()


def decode_ulaw_array(data: bytes) -> Int16Array:
    """µ-law codes to int16 samples."""
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def decode_alaw_array(data: bytes) -> Int16Array:
    """A-law codes to int16 samples."""
    return _ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def _pcm(pcm: bytes) -> Int16Array:
    if len(pcm) % 2:
        raise ValueError(f"16-bit PCM must have an even number of bytes, not {len(pcm)}")
    return np.frombuffer(pcm, dtype=_PCM_DTYPE).astype(np.int16, copy=False)


def encode_ulaw(pcm: bytes) -> bytes:
    """µ-law encode little-endian 16-bit PCM (one code per sample)."""
    return encode_ulaw_array(_pcm(pcm))


def encode_alaw(pcm: bytes) -> bytes:
    """A-law encode little-endian 16-bit PCM (one code per sample)."""
    return encode_alaw_array(_pcm(pcm))


def decode_ulaw(data: bytes) -> bytes:
    """µ-law codes to little-endian 16-bit PCM."""
    return decode_ulaw_array(data).astype(_PCM_DTYPE, copy=False).tobytes()


def decode_alaw(data: bytes) -> bytes:
    """A-law codes to little-endian 16-bit PCM."""
    return decode_alaw_array(data).astype(_PCM_DTYPE, copy=False).tobytes()


def ulaw_to_alaw(data: bytes) -> bytes:
    """Transcode µ-law to A-law through the decoded sample (G.711 via linear)."""
    return data.translate(_ULAW_TO_ALAW)


def alaw_to_ulaw(data: bytes) -> bytes:
    """Transcode A-law to µ-law through the decoded sample (G.711 via linear)."""
    return data.translate(_ALAW_TO_ULAW)
