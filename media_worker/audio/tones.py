"""Tone and silence frames: 8 kHz int16, 160 samples (20 ms) per frame, phase-continuous across frames."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["FRAME_SAMPLES", "SAMPLE_RATE", "ToneGenerator", "silence_frame"]

SAMPLE_RATE: Final = 8000
FRAME_SAMPLES: Final = 160
_FULL_SCALE: Final = 32767


def silence_frame(samples: int = FRAME_SAMPLES) -> npt.NDArray[np.int16]:
    """A frame of digital silence."""
    return np.zeros(samples, dtype=np.int16)


class ToneGenerator:
    """Sum of sine tones (one frequency for a test tone, two for a DTMF pair), frame after frame.

    *amplitude* is the peak of the sum as a fraction of full scale (0-1), shared equally by the tones.
    Each tone's phase carries over from one frame to the next, so frames join without clicks.
    """

    __slots__ = ("_amplitude", "_phases", "_steps", "frame_samples", "frequencies", "sample_rate")

    def __init__(
        self,
        *frequencies: float,
        amplitude: float = 0.25,
        sample_rate: int = SAMPLE_RATE,
        frame_samples: int = FRAME_SAMPLES,
    ) -> None:
        if not frequencies or any(not 0 < f < sample_rate / 2 for f in frequencies):
            raise ValueError("need at least one frequency, each between 0 and the Nyquist frequency")
        if not 0 <= amplitude <= 1:
            raise ValueError(f"amplitude is a fraction of full scale (0-1), not {amplitude}")
        self.frequencies = frequencies
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        self._amplitude = amplitude * _FULL_SCALE / len(frequencies)
        self._steps = [2 * math.pi * f / sample_rate for f in frequencies]
        self._phases = [0.0] * len(frequencies)

    def next_frame(self) -> npt.NDArray[np.int16]:
        """The next ``frame_samples`` samples."""
        n = np.arange(self.frame_samples, dtype=np.float64)
        total = np.zeros(self.frame_samples, dtype=np.float64)
        for i, step in enumerate(self._steps):
            total += np.sin(self._phases[i] + step * n)
            self._phases[i] = (self._phases[i] + step * self.frame_samples) % (2 * math.pi)
        return np.round(total * self._amplitude).astype(np.int16)
