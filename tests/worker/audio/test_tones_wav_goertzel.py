from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from media_worker.audio import (
    FRAME_SAMPLES,
    ToneGenerator,
    WavError,
    decode_ulaw_array,
    decode_wav,
    encode_ulaw_array,
    encode_wav,
    goertzel_power,
    read_wav_file,
    silence_frame,
    tone_level,
    write_wav_file,
)


def test_frames_are_8khz_int16_160_samples() -> None:
    frame = ToneGenerator(1000).next_frame()
    assert frame.dtype == np.int16
    assert frame.shape == (FRAME_SAMPLES,)
    assert silence_frame().tolist() == [0] * 160


def test_tone_is_phase_continuous_across_frames() -> None:
    generator = ToneGenerator(440, amplitude=0.5)
    joined = np.concatenate([generator.next_frame() for _ in range(50)])
    expected = np.round(0.5 * 32767 * np.sin(2 * np.pi * 440 * np.arange(len(joined)) / 8000))
    assert np.max(np.abs(joined.astype(np.float64) - expected)) <= 1  # rounding only, no seams


def test_goertzel_detects_1khz_and_not_2khz() -> None:
    generator = ToneGenerator(1000, amplitude=0.3)
    block = np.concatenate([generator.next_frame() for _ in range(5)])
    assert tone_level(block, 1000) > 0.95
    assert tone_level(block, 2000) < 0.01
    assert goertzel_power(block, 1000) > 1000 * goertzel_power(block, 2000)


def test_goertzel_survives_g711_and_dual_tones() -> None:
    generator = ToneGenerator(697, 1209, amplitude=0.5)  # DTMF "1"
    block = np.concatenate([generator.next_frame() for _ in range(10)])
    decoded = decode_ulaw_array(encode_ulaw_array(block))
    assert tone_level(decoded, 697, 8000) > 0.3
    assert tone_level(decoded, 1209) > 0.3
    assert tone_level(decoded, 1000) < 0.05


def test_silence_has_no_tone() -> None:
    assert tone_level(silence_frame(), 1000) == 0.0


@pytest.mark.parametrize("kwargs", [{"amplitude": 1.5}, {"amplitude": -0.1}])
def test_tone_generator_validates(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="amplitude"):
        ToneGenerator(1000, **kwargs)
    with pytest.raises(ValueError, match="Nyquist"):
        ToneGenerator(4000)


def test_wav_round_trip_bytes_and_file(tmp_path: Path) -> None:
    pcm = ToneGenerator(1000).next_frame().astype("<i2").tobytes() * 10
    data = encode_wav(pcm)
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WAVE"
    assert decode_wav(data) == pcm
    path = tmp_path / "tone.wav"
    write_wav_file(path, pcm)
    assert read_wav_file(path) == pcm


def test_wav_with_the_wrong_format_is_refused() -> None:
    with pytest.raises(WavError, match="need mono 16-bit 8000 Hz"):
        decode_wav(encode_wav(bytes(320), sample_rate=16000))
    with pytest.raises(WavError, match="not a readable PCM WAV"):
        decode_wav(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(WavError):
        decode_wav(b"")
    with pytest.raises(ValueError, match="even number of bytes"):
        encode_wav(b"\x00")
