"""8 kHz mono 16-bit PCM WAV: bytes in, bytes out, plus thin path helpers (stdlib ``wave``)."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Final

__all__ = ["WavError", "decode_wav", "encode_wav", "read_wav_file", "write_wav_file"]

WAV_SAMPLE_RATE: Final = 8000


class WavError(ValueError):
    """The file is not a WAV this project plays: 8 kHz, mono, 16-bit PCM."""


def encode_wav(pcm: bytes, *, sample_rate: int = WAV_SAMPLE_RATE) -> bytes:
    """Wrap little-endian 16-bit mono PCM in a WAV container."""
    if len(pcm) % 2:
        raise ValueError(f"16-bit PCM must have an even number of bytes, not {len(pcm)}")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm)
    return buffer.getvalue()


def decode_wav(data: bytes, *, sample_rate: int = WAV_SAMPLE_RATE) -> bytes:
    """The PCM samples of a mono 16-bit WAV at *sample_rate*; raise :class:`WavError` otherwise."""
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
            if (channels, width, rate) != (1, 2, sample_rate):
                raise WavError(
                    f"WAV is {channels} channel(s), {8 * width}-bit, {rate} Hz; "
                    f"need mono 16-bit {sample_rate} Hz"
                )
            return reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as exc:
        raise WavError(f"not a readable PCM WAV: {exc}") from None


def read_wav_file(path: str | Path, *, sample_rate: int = WAV_SAMPLE_RATE) -> bytes:
    """:func:`decode_wav` of the file at *path*."""
    return decode_wav(Path(path).read_bytes(), sample_rate=sample_rate)


def write_wav_file(path: str | Path, pcm: bytes, *, sample_rate: int = WAV_SAMPLE_RATE) -> None:
    """Write :func:`encode_wav` of *pcm* to *path*."""
    Path(path).write_bytes(encode_wav(pcm, sample_rate=sample_rate))
