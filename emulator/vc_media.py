"""Media side of the Voice Connector stand-in: what it plays, what it keeps, and the SDP it writes itself.

Answers to the caller's offers come from ``media_worker.negotiation.answer_offer``; this module only adds
what a UAS that also *offers* needs (the hold/resume re-INVITE) and the deliberately wrong answer of the
"answer without crypto" fault.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Final

from media_worker.audio import ToneGenerator
from media_worker.negotiation import LocalCrypto, MediaParams, Offer, with_next_version
from media_worker.sdp import Attribute, Direction, MediaDescription, SessionDescription

__all__ = ["DEFAULT_TONE_HZ", "ToneRecorderApp", "plain_rtp_answer", "reoffer"]

DEFAULT_TONE_HZ: Final = 1000.0
_DIRECTIONS: Final = frozenset(d.value for d in Direction)


class ToneRecorderApp:
    """Plays a steady tone to the caller and keeps every frame it hears (a media app for MediaLeg)."""

    name = "tone-recorder"
    wants_audio = True

    def __init__(
        self,
        frequency: float = DEFAULT_TONE_HZ,
        *,
        max_seconds: int = 600,
        on_frame: Callable[[], None] | None = None,
    ) -> None:
        self._tone = ToneGenerator(frequency, amplitude=0.25)
        self._frames: list[bytes] = []
        self._max_frames = max_seconds * 50
        self._on_frame = on_frame

    def next_frame(self) -> bytes | None:
        return self._tone.next_frame().tobytes()

    def on_audio(self, pcm: bytes) -> None:
        if len(self._frames) < self._max_frames:
            self._frames.append(pcm)
        if self._on_frame is not None:
            self._on_frame()

    @property
    def frames_recorded(self) -> int:
        return len(self._frames)

    def recording(self) -> bytes:
        """Everything heard so far: 8 kHz mono 16-bit little-endian PCM."""
        return b"".join(self._frames)


def _with_direction(media: MediaDescription, direction: Direction) -> MediaDescription:
    kept = tuple(a for a in media.attributes if not (a.value is None and a.name in _DIRECTIONS))
    return replace(media, attributes=(*kept, Attribute(direction.value)))


def plain_rtp_answer(answer_sdp: str) -> str:
    """The same answer turned into RTP/AVP without any a=crypto line (the "no crypto" fault)."""
    description = SessionDescription.parse(answer_sdp)
    media = tuple(
        replace(
            m,
            proto="RTP/AVP" if m.proto.startswith("RTP/SAVP") else m.proto,
            attributes=tuple(a for a in m.attributes if a.name != "crypto"),
        )
        for m in description.media
    )
    return str(replace(description, media=media))


def reoffer(previous_sdp: str, params: MediaParams, direction: Direction) -> tuple[str, Offer]:
    """A new offer for an established call: our last SDP with ``direction`` and the next o= version.

    The crypto line and our key stay the same (RFC 4568 §7.1.4 allows keeping them), so the caller can keep
    its own key too and the media sessions need no restart. Returns the text and the ``Offer`` that
    ``process_answer`` matches the caller's answer against.
    """
    previous = SessionDescription.parse(previous_sdp)
    media = tuple(_with_direction(m, direction) if m.port else m for m in previous.media)
    description = with_next_version(previous, replace(previous, media=media))
    offer = Offer(
        description=description,
        crypto=(LocalCrypto(params.crypto_tag, params.suite, params.local_key_salt),),
        codecs=(params.codec,),
        ptime_ms=params.ptime_ms,
        direction=direction,
        telephone_event_pt=params.telephone_event_pt,
    )
    return str(description), offer
