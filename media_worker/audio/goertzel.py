"""Goertzel single-frequency detector: how much of a block's energy sits at one frequency.

Used by tests and the emulator to check which tone a call is carrying, e.g. 1 kHz present, 2 kHz absent.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["goertzel_power", "tone_level"]


def goertzel_power(
    samples: npt.NDArray[np.int16] | npt.NDArray[np.float64], frequency: float, sample_rate: int = 8000
) -> float:
    """Squared magnitude of the DFT of *samples* at *frequency*, by the Goertzel recurrence."""
    coefficient = 2 * math.cos(2 * math.pi * frequency / sample_rate)
    s_prev = s_prev2 = 0.0
    for x in samples.astype(np.float64).tolist():
        s_prev, s_prev2 = x + coefficient * s_prev - s_prev2, s_prev
    return s_prev * s_prev + s_prev2 * s_prev2 - coefficient * s_prev * s_prev2


def tone_level(
    samples: npt.NDArray[np.int16] | npt.NDArray[np.float64], frequency: float, sample_rate: int = 8000
) -> float:
    """Fraction (0-1) of the block's energy at *frequency*; about 1.0 for a pure tone spanning whole cycles.

    Normalised so a sinusoid of any amplitude gives the same value: ``2 * power / (N * energy)``.
    Returns 0.0 for a silent block.
    """
    data = samples.astype(np.float64)
    energy = float(np.dot(data, data))
    if energy == 0.0:
        return 0.0
    return 2 * goertzel_power(data, frequency, sample_rate) / (len(data) * energy)
