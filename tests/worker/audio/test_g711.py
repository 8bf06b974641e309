"""G.711 tables against a per-sample reference written from the standard's quantisation intervals.

The reference finds, for each sample, the quantisation interval (G.711 Tables 1a/2a: segment start plus
mantissa steps) that contains it by searching a list of interval lower bounds, and decodes a code to the
midpoint of its interval. Linear input follows the ITU-T G.191 reference conventions: 16-bit samples cut
to 14 bits (µ-law) or 13 bits (A-law), negative magnitudes taken as the one's complement.
"""

from __future__ import annotations

import bisect
import struct
import warnings

import numpy as np
import pytest

from media_worker.audio import (
    PCMA,
    PCMU,
    alaw_to_ulaw,
    codec_by_name,
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

# µ-law: interval (segment s, step m) covers 14-bit magnitudes from ((16 + m) << (s + 1)) - 33, width 2 << s.
ULAW_LOWER = [((16 + (c & 15)) << ((c >> 4) + 1)) - 33 for c in range(128)]
# A-law: 12-bit magnitude; segment 0 from 2m (width 2), segment s >= 1 from (16 + m) << s (width 1 << s).
ALAW_LOWER = [2 * (c & 15) if c < 16 else (16 + (c & 15)) << (c >> 4) for c in range(128)]


def _magnitude(sample: int) -> tuple[int, bool]:
    return (-sample - 1, True) if sample < 0 else (sample, False)


def reference_ulaw_encode(sample: int) -> int:
    magnitude, negative = _magnitude(sample)
    index = bisect.bisect_right(ULAW_LOWER, magnitude >> 2) - 1  # last interval starting at or below
    code = 0x7F - index  # the line carries the complement of segment|mantissa
    return code if negative else code | 0x80


def reference_ulaw_decode(code: int) -> int:
    index = 0x7F - (code & 0x7F)
    width = 2 << (index >> 4)
    midpoint14 = ULAW_LOWER[index] + width // 2
    value = 4 * midpoint14
    return value if code & 0x80 else -value


def reference_alaw_encode(sample: int) -> int:
    magnitude, negative = _magnitude(sample)
    index = bisect.bisect_right(ALAW_LOWER, magnitude >> 3) - 1
    return (index if negative else index | 0x80) ^ 0x55


def reference_alaw_decode(code: int) -> int:
    index = (code ^ 0x55) & 0x7F
    width = 2 if index < 16 else 1 << (index >> 4)
    value = 8 * ALAW_LOWER[index] + 4 * width  # midpoint on the 16-bit scale
    return value if code & 0x80 else -value


ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


def test_ulaw_encode_is_bit_identical_for_all_65536_inputs() -> None:
    expected = bytes(reference_ulaw_encode(int(s)) for s in ALL_SAMPLES)
    assert encode_ulaw_array(ALL_SAMPLES) == expected
    assert encode_ulaw(ALL_SAMPLES.astype("<i2").tobytes()) == expected


def test_alaw_encode_is_bit_identical_for_all_65536_inputs() -> None:
    expected = bytes(reference_alaw_encode(int(s)) for s in ALL_SAMPLES)
    assert encode_alaw_array(ALL_SAMPLES) == expected
    assert encode_alaw(ALL_SAMPLES.astype("<i2").tobytes()) == expected


def test_ulaw_decode_is_bit_identical_for_all_256_codes() -> None:
    expected = [reference_ulaw_decode(c) for c in ALL_CODES]
    assert decode_ulaw_array(ALL_CODES).tolist() == expected
    assert list(struct.unpack("<256h", decode_ulaw(ALL_CODES))) == expected


def test_alaw_decode_is_bit_identical_for_all_256_codes() -> None:
    expected = [reference_alaw_decode(c) for c in ALL_CODES]
    assert decode_alaw_array(ALL_CODES).tolist() == expected
    assert list(struct.unpack("<256h", decode_alaw(ALL_CODES))) == expected


@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    [
        (0, 0xFF, 0xD5),  # the familiar silence codes
        (-1, 0x7F, 0x55),
        (32767, 0x80, 0xAA),  # full scale
        (-32768, 0x00, 0x2A),
    ],
)
def test_well_known_codes(sample: int, ulaw: int, alaw: int) -> None:
    pcm = struct.pack("<h", sample)
    assert encode_ulaw(pcm) == bytes([ulaw])
    assert encode_alaw(pcm) == bytes([alaw])


def test_decoded_values_re_encode_to_the_same_code() -> None:
    assert encode_ulaw(decode_ulaw(ALL_CODES)) == ALL_CODES.replace(b"\x7f", b"\xff")  # -0 decodes to 0
    assert encode_alaw(decode_alaw(ALL_CODES)) == ALL_CODES


def test_transcoding_goes_through_linear() -> None:
    assert ulaw_to_alaw(ALL_CODES) == encode_alaw(decode_ulaw(ALL_CODES))
    assert alaw_to_ulaw(ALL_CODES) == encode_ulaw(decode_alaw(ALL_CODES))


def test_odd_length_pcm_is_refused() -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        encode_ulaw(b"\x00\x00\x00")


def test_codec_registry() -> None:
    assert codec_by_name("pcmu") is PCMU
    assert PCMU.payload_type == 0
    assert codec_by_name("PCMA") is PCMA
    assert PCMA.payload_type == 8
    assert codec_by_name("opus") is None
    assert PCMU.decode(PCMU.encode(bytes(320))) == bytes(320)


def test_agrees_with_audioop_where_the_conventions_agree() -> None:
    # audioop (gone in 3.13) negates negative µ-law input instead of taking the one's complement, so it
    # differs only for some negative samples on interval boundaries; A-law and both decoders agree.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # audioop announces its removal on import
        audioop = pytest.importorskip("audioop")
    pcm = ALL_SAMPLES.astype("<i2").tobytes()
    assert encode_alaw(pcm) == audioop.lin2alaw(pcm, 2)
    assert decode_ulaw(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)
    assert decode_alaw(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)
    ours, theirs = encode_ulaw_array(ALL_SAMPLES), audioop.lin2ulaw(pcm, 2)
    differing = [(int(s), a, b) for s, a, b in zip(ALL_SAMPLES, ours, theirs, strict=True) if a != b]
    assert len(differing) == 508
    assert all(sample < 0 for sample, _, _ in differing)
    assert all(abs(a - b) == 1 for _, a, b in differing)  # neighbouring intervals, never further apart
