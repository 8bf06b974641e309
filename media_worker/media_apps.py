"""What a call plays and does with what it hears: one small object per call, per dial target's ``media_app``.

Apps work on 20 ms frames of 8 kHz mono 16-bit little-endian PCM (160 samples). ``next_frame()`` returning
``None`` means silence, which the media engine sends as a pre-encoded payload without touching the codec: most
calls are silent listeners, so the common case costs nothing per tick.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Final, Protocol

from .audio import FRAME_SAMPLES, ToneGenerator

__all__ = [
    "AnnounceApp",
    "EchoApp",
    "MediaApp",
    "MediaAppError",
    "RecordApp",
    "SilenceApp",
    "ToneApp",
    "build_media_app",
]

FRAME_BYTES: Final = FRAME_SAMPLES * 2
MAX_RECORDING_SECONDS: Final = 4 * 3600
_FRAMES_PER_SECOND: Final = 50


class MediaAppError(ValueError):
    """A dial target's media app or its options are unusable; the message names the option."""


class MediaApp(Protocol):
    name: str
    wants_audio: bool
    """Whether received audio must be decoded and handed to ``on_audio`` (costs a decode per packet)."""

    def next_frame(self) -> bytes | None: ...

    def on_audio(self, pcm: bytes) -> None: ...


class SilenceApp:
    """Listen only, send comfort silence: the default participant."""

    name = "silence"
    wants_audio = False

    def next_frame(self) -> bytes | None:
        return None

    def on_audio(self, pcm: bytes) -> None:
        return None


class ToneApp:
    """A continuous tone (default 440 Hz), handy to find the participant in a meeting."""

    name = "tone"
    wants_audio = False

    def __init__(self, frequency: float = 440.0, amplitude: float = 0.25) -> None:
        self._tone = ToneGenerator(frequency, amplitude=amplitude)

    def next_frame(self) -> bytes | None:
        return self._tone.next_frame().tobytes()

    def on_audio(self, pcm: bytes) -> None:
        return None


class AnnounceApp:
    """Play a recording once (or looped), then silence."""

    name = "announce"
    wants_audio = False

    def __init__(self, pcm: bytes, *, loop: bool = False) -> None:
        usable = len(pcm) - len(pcm) % FRAME_BYTES
        self._frames = [pcm[i : i + FRAME_BYTES] for i in range(0, usable, FRAME_BYTES)]
        self._loop = loop
        self._index = 0

    def next_frame(self) -> bytes | None:
        if self._index >= len(self._frames):
            if not self._loop or not self._frames:
                return None
            self._index = 0
        frame = self._frames[self._index]
        self._index += 1
        return frame

    def on_audio(self, pcm: bytes) -> None:
        return None


class EchoApp:
    """Send back what was heard, delayed by a fixed number of frames."""

    name = "echo"
    wants_audio = True

    def __init__(self, delay_frames: int = 5) -> None:
        self._queue: deque[bytes] = deque(maxlen=max(1, delay_frames) * 4)
        self._delay = delay_frames

    def next_frame(self) -> bytes | None:
        if len(self._queue) <= self._delay:
            return None
        return self._queue.popleft()

    def on_audio(self, pcm: bytes) -> None:
        self._queue.append(pcm)


class RecordApp:
    """Keep what was heard (bounded) for a WAV file at the end of the call; send silence."""

    name = "record"
    wants_audio = True

    def __init__(self, max_seconds: int = MAX_RECORDING_SECONDS) -> None:
        self._frames: list[bytes] = []
        self._max_frames = max_seconds * _FRAMES_PER_SECOND
        self.truncated = False

    def next_frame(self) -> bytes | None:
        return None

    def on_audio(self, pcm: bytes) -> None:
        if len(self._frames) >= self._max_frames:
            self.truncated = True
            return
        self._frames.append(pcm)

    def recording(self) -> bytes:
        """Everything heard so far, as PCM."""
        return b"".join(self._frames)


def _number(options: Mapping[str, object], key: str, default: float, low: float, high: float) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise MediaAppError(f"media option {key!r} must be a number between {low} and {high}")
    return float(value)


def build_media_app(
    name: str, options: Mapping[str, object], *, load_audio: Callable[[str], bytes]
) -> MediaApp:
    """The app for a dial target. ``load_audio(source)`` returns PCM for ``announce`` (a path or S3 URI)."""
    if name == "silence":
        return SilenceApp()
    if name == "tone":
        return ToneApp(
            _number(options, "frequency", 440.0, 50.0, 3900.0),
            _number(options, "amplitude", 0.25, 0.0, 1.0),
        )
    if name == "echo":
        return EchoApp(int(_number(options, "delay_frames", 5, 0, 500)))
    if name == "record":
        return RecordApp(int(_number(options, "max_seconds", MAX_RECORDING_SECONDS, 1, 86_400)))
    if name == "announce":
        source = options.get("source")
        if not isinstance(source, str) or not source:
            raise MediaAppError("media option 'source' (a WAV path or s3:// URI) is required for announce")
        return AnnounceApp(load_audio(source), loop=bool(options.get("loop", False)))
    raise MediaAppError(f"unknown media app {name!r}")
