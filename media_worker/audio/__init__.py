"""Pure audio helpers: G.711, tones, WAV bytes, Goertzel detection. numpy allowed; no I/O beyond wav paths."""

from .codecs import CODECS, PCMA, PCMU, Codec, codec_by_name
from .g711 import (
    alaw_to_ulaw,
    decode_alaw,
    decode_alaw_array,
    decode_ulaw,
    decode_ulaw_array,
    encode_alaw,
    encode_alaw_array,
    encode_ulaw,
    encode_ulaw_array,
    ulaw_to_alaw,
)
from .goertzel import goertzel_power, tone_level
from .tones import FRAME_SAMPLES, SAMPLE_RATE, ToneGenerator, silence_frame
from .wav import WavError, decode_wav, encode_wav, read_wav_file, write_wav_file

__all__ = [
    "CODECS",
    "FRAME_SAMPLES",
    "PCMA",
    "PCMU",
    "SAMPLE_RATE",
    "Codec",
    "ToneGenerator",
    "WavError",
    "alaw_to_ulaw",
    "codec_by_name",
    "decode_alaw",
    "decode_alaw_array",
    "decode_ulaw",
    "decode_ulaw_array",
    "decode_wav",
    "encode_alaw",
    "encode_alaw_array",
    "encode_ulaw",
    "encode_ulaw_array",
    "encode_wav",
    "goertzel_power",
    "read_wav_file",
    "silence_frame",
    "tone_level",
    "ulaw_to_alaw",
    "write_wav_file",
]
