"""SDP offer/answer (RFC 3264) for one SDES-SRTP audio stream (RFC 4568).

Three entry points: ``build_offer`` (we dial), ``process_answer`` (their 200 OK), and ``answer_offer``
(an offer from the peer: the emulator's UAS role, or a re-INVITE/UPDATE on an established call). All of
them either produce a ``MediaParams`` or raise ``NegotiationFailed`` with a ``FailureReason``; malformed
input never escapes as another exception type. SRTP is mandatory: there is no fallback to plain RTP.

Choices where the RFCs leave room (documented so both roles agree):

- Crypto (RFC 4568 §7.1.2): the answer carries exactly one of the offered lines, keeping the offerer's
  tag. We pick by *our* suite preference (the dial job's ``srtp_suites`` order is a security policy), and
  among lines of the same suite by the offerer's order. Lines we cannot run (unknown suite, bad or
  wrong-length key, MKI, several keys, session parameters) are skipped, never half-used.
- Codec (RFC 3264 §6.1): the first format in the *offerer's* order that we support; the answer lists that
  one codec plus telephone-event if it was offered, so both ends know exactly what will be sent.
- ptime: we send with the peer's ``a=ptime`` when it is a sane value (10..120 ms), else our own.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final

from media_worker.rtp.suites import suite_by_name
from media_worker.sdes import CryptoAttribute, SdesError
from media_worker.sdp import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SdpError,
    SessionDescription,
)

__all__ = [
    "RTP_CODECS",
    "TELEPHONE_EVENT_PT",
    "FailureReason",
    "LocalCrypto",
    "MediaParams",
    "NegotiationFailed",
    "Offer",
    "answer_offer",
    "build_offer",
    "process_answer",
    "with_next_version",
]

#: Codec name → (static payload type, RTP clock rate). G.722's RTP clock is 8000 although it samples at
#: 16 kHz (RFC 3551 §4.5.2).
RTP_CODECS: Final[dict[str, tuple[int, int]]] = {"PCMU": (0, 8000), "PCMA": (8, 8000), "G722": (9, 8000)}
TELEPHONE_EVENT_PT: Final = 101
_STATIC_NAMES: Final = {pt: name for name, (pt, _) in RTP_CODECS.items()}
_SRTP_PROTOS: Final = frozenset({"RTP/SAVP", "RTP/SAVPF"})
_PLAIN_PROTOS: Final = frozenset({"RTP/AVP", "RTP/AVPF"})
# RFC 3264 §8.4 old-style hold; only compared with the peer's c= address, never bound.
_NULL_ADDRESSES: Final = frozenset({"0.0.0.0", "::"})  # noqa: S104 - not a bind address


class FailureReason(StrEnum):
    """Why negotiation failed; every one maps to SIP 488 Not Acceptable Here (RFC 3261 §21.4.26)."""

    MALFORMED_SDP = "malformed-sdp"
    NO_AUDIO_STREAM = "no-audio-stream"
    STREAM_REJECTED = "stream-rejected"
    NO_SRTP = "no-srtp"
    UNSUPPORTED_TRANSPORT = "unsupported-transport"
    NO_COMMON_CRYPTO = "no-common-crypto"
    NO_COMMON_CODEC = "no-common-codec"
    NO_CONNECTION_ADDRESS = "no-connection-address"


class NegotiationFailed(Exception):
    """The peer's SDP is unusable. ``reason`` classifies it; the message never contains key material."""

    status_code: Final = 488

    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LocalCrypto:
    """One crypto line we offered: tag, suite and the key‖salt we will send with if it is chosen."""

    tag: int
    suite: str
    key_salt: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Offer:
    """An offer we sent, with the keys behind its crypto lines so the answer can be matched."""

    description: SessionDescription
    crypto: tuple[LocalCrypto, ...]
    codecs: tuple[str, ...]
    ptime_ms: int
    direction: Direction
    telephone_event_pt: int | None

    def __str__(self) -> str:
        return str(self.description)


@dataclass(frozen=True, slots=True)
class MediaParams:
    """The negotiated stream, from our point of view."""

    remote_rtp: tuple[str, int]
    remote_rtcp: tuple[str, int]
    """From ``a=rtcp`` (RFC 3605) when present, else the RTP port + 1 (RFC 3550 §11)."""
    codec: str
    payload_type: int
    clock_rate: int
    telephone_event_pt: int | None
    ptime_ms: int
    direction: Direction
    """What we may do: ``direction.sends`` / ``direction.receives``."""
    suite: str
    crypto_tag: int
    local_key_salt: bytes = field(repr=False)
    """Our transmit master key‖salt (the peer's receive key)."""
    remote_key_salt: bytes = field(repr=False)
    """The peer's transmit master key‖salt (our receive key)."""
    remote_key_lifetime: int | None = None
    """Packets the peer's key may protect, if it said (RFC 4568 §6.1); re-keying is the peer's job."""


def build_offer(
    *,
    local_address: str,
    rtp_port: int,
    codecs: Sequence[str],
    suites: Sequence[str],
    ptime_ms: int = 20,
    direction: Direction | str = Direction.SENDRECV,
    session_id: int,
    session_version: int,
    urandom: Callable[[int], bytes],
    telephone_event_pt: int | None = TELEPHONE_EVENT_PT,
) -> Offer:
    """An RTP/SAVP audio offer with one crypto line per suite (tags 1..n) and fresh keys from ``urandom``."""
    _check_local(rtp_port=rtp_port, codecs=codecs, suites=suites, ptime_ms=ptime_ms)
    if len(set(suites)) != len(suites):
        raise ValueError("suites must not repeat")
    crypto = tuple(
        LocalCrypto(tag, line.suite, line.usable_key_salt())
        for tag, line in ((t, CryptoAttribute.generate(t, s, urandom)) for t, s in enumerate(suites, 1))
    )
    media = _audio_media(
        rtp_port=rtp_port,
        proto="RTP/SAVP",
        formats=[(RTP_CODECS[name][0], name) for name in codecs],
        telephone_event=None if telephone_event_pt is None else (telephone_event_pt, "0-16"),
        ptime_ms=ptime_ms,
        direction=Direction(direction),
        crypto=[CryptoAttribute.inline(c.tag, c.suite, c.key_salt) for c in crypto],
    )
    description = _session(local_address, str(session_id), session_version, media)
    return Offer(description, crypto, tuple(codecs), ptime_ms, Direction(direction), telephone_event_pt)


def process_answer(offer: Offer, answer_sdp: str | SessionDescription) -> MediaParams:
    """Check the peer's answer against ``offer`` and return the stream parameters (RFC 3264 §6, §7)."""
    answer = _parse(answer_sdp)
    if len(answer.media) != len(offer.description.media):
        raise NegotiationFailed(FailureReason.MALFORMED_SDP, "answer has a different number of m= lines")
    media = answer.media[0]
    if media.kind != "audio":
        raise NegotiationFailed(FailureReason.NO_AUDIO_STREAM, "answer's first m= line is not audio")
    _check_transport(media)
    offered = {c.tag: c for c in offer.crypto}
    chosen: tuple[LocalCrypto, CryptoAttribute, bytes] | None = None
    for line, key in _usable_crypto(media):
        mine = offered.get(line.tag)
        # baresip answers with a suite of its own under our tag: the suite must match what we offered.
        if mine is not None and mine.suite == line.suite:
            chosen = (mine, line, key)
            break
    if chosen is None:
        raise NegotiationFailed(
            FailureReason.NO_COMMON_CRYPTO, "no usable crypto line in the answer has an offered tag and suite"
        )
    mine, line, remote_key = chosen
    return _media_params(
        answer,
        media,
        codecs=offer.codecs,
        willing=offer.direction,
        ptime_ms=offer.ptime_ms,
        crypto=(line, mine.key_salt, remote_key),
        dtmf=offer.telephone_event_pt is not None,
    )


def answer_offer(
    offer_sdp: str | SessionDescription,
    *,
    local_address: str,
    rtp_port: int,
    codecs: Sequence[str],
    suites: Sequence[str],
    urandom: Callable[[int], bytes],
    session_id: int | None = None,
    session_version: int = 0,
    previous: SessionDescription | None = None,
    current: MediaParams | None = None,
    ptime_ms: int = 20,
    direction: Direction | str = Direction.SENDRECV,
) -> tuple[str, MediaParams]:
    """Answer an offer: returns the answer text and the stream parameters (RFC 3264 §6.1, RFC 4568 §7.1.2).

    Initial answer: pass ``session_id``/``session_version`` for the o= line. Re-offer on an established
    call: pass ``previous`` (the last SDP we sent, offer or answer) so the o= line keeps its session id and
    bumps the version only if the content changed (RFC 3264 §8), and ``current`` so that our transmit key
    survives when the suite does not change. ``direction`` is what we are willing to do; the answer is
    that intersected with the reverse of the offer's (sendonly → recvonly, inactive → inactive, ...).
    """
    _check_local(rtp_port=rtp_port, codecs=codecs, suites=suites, ptime_ms=ptime_ms)
    if previous is None and session_id is None:
        raise ValueError("pass session_id for an initial answer, or previous for a re-answer")
    offer = _parse(offer_sdp)
    index = next((i for i, m in enumerate(offer.media) if m.kind == "audio" and m.port != 0), None)
    if index is None:
        raise NegotiationFailed(FailureReason.NO_AUDIO_STREAM, "offer has no active audio stream")
    media = offer.media[index]
    _check_transport(media)
    usable = _usable_crypto(media)
    chosen = next(((line, key) for suite in suites for line, key in usable if line.suite == suite), None)
    if chosen is None:
        raise NegotiationFailed(
            FailureReason.NO_COMMON_CRYPTO,
            f"none of {len(media.attributes_named('crypto'))} offered crypto line(s) is usable and allowed",
        )
    line, remote_key = chosen
    if current is not None and current.suite == line.suite:
        local_key = current.local_key_salt
    else:
        local_key = CryptoAttribute.generate(line.tag, line.suite, urandom).usable_key_salt()
    params = _media_params(
        offer,
        media,
        codecs=codecs,
        willing=Direction(direction),
        ptime_ms=ptime_ms,
        crypto=(line, local_key, remote_key),
        dtmf=True,
    )
    audio = _audio_media(
        rtp_port=rtp_port,
        proto=media.proto,  # RFC 3264 §6.1: the answer keeps the offered transport
        formats=[(params.payload_type, params.codec)],
        telephone_event=_telephone_event(media),
        ptime_ms=ptime_ms,
        direction=params.direction,
        crypto=[CryptoAttribute.inline(line.tag, line.suite, local_key)],
    )
    # RFC 3264 §6: one m= line per offered one, in order; the others are refused with port 0.
    sections = tuple(
        audio if i == index else MediaDescription(m.kind, 0, m.proto, m.formats[:1] or ("0",))
        for i, m in enumerate(offer.media)
    )
    body = _session(local_address, str(session_id or 0), session_version, sections)
    if previous is not None:
        body = with_next_version(previous, body)
    return str(body), params


def with_next_version(previous: SessionDescription, body: SessionDescription) -> SessionDescription:
    """``body`` with ``previous``'s o= line: same session id, version + 1 only if the content changed."""
    same_origin = replace(body, origin=previous.origin)
    if str(same_origin) == str(previous):
        return same_origin
    origin = replace(previous.origin, session_version=previous.origin.session_version + 1)
    return replace(body, origin=origin)


def _media_params(
    sd: SessionDescription,
    media: MediaDescription,
    *,
    codecs: Sequence[str],
    willing: Direction,
    ptime_ms: int,
    crypto: tuple[CryptoAttribute, bytes, bytes],
    dtmf: bool,
) -> MediaParams:
    """The stream described by the peer's ``media``, given our codecs, willingness and the chosen keys."""
    line, local_key, remote_key = crypto
    pt, codec = _pick_codec(media, codecs)
    rtp, rtcp = _remote_addresses(sd, media)
    theirs = sd.media_direction(media)
    te = _telephone_event(media) if dtmf else None
    return MediaParams(
        remote_rtp=rtp,
        remote_rtcp=rtcp,
        codec=codec,
        payload_type=pt,
        clock_rate=RTP_CODECS[codec][1],
        telephone_event_pt=None if te is None else te[0],
        ptime_ms=_send_ptime(media, ptime_ms),
        # RFC 3264 §6.1: we may send only if they receive; a null c= address means "do not send" (§8.4).
        direction=Direction.from_flags(
            send=willing.sends and theirs.receives and rtp[0] not in _NULL_ADDRESSES,
            receive=willing.receives and theirs.sends,
        ),
        suite=line.suite,
        crypto_tag=line.tag,
        local_key_salt=local_key,
        remote_key_salt=remote_key,
        remote_key_lifetime=line.keys[0].lifetime_packets,
    )


def _check_local(*, rtp_port: int, codecs: Sequence[str], suites: Sequence[str], ptime_ms: int) -> None:
    """Our own caller's mistakes: ValueError, not NegotiationFailed."""
    if not 1 <= rtp_port <= 65534:
        raise ValueError("rtp_port must be 1..65534 (RTCP uses the next port)")
    if not codecs or any(name not in RTP_CODECS for name in codecs) or len(set(codecs)) != len(codecs):
        raise ValueError(f"codecs must be distinct names from {sorted(RTP_CODECS)}")
    if not suites or any(suite_by_name(s) is None for s in suites):
        raise ValueError("suites must name supported SRTP suites")
    if not 10 <= ptime_ms <= 120:
        raise ValueError("ptime_ms must be 10..120")


def _parse(sdp: str | SessionDescription) -> SessionDescription:
    if isinstance(sdp, SessionDescription):
        return sdp
    try:
        return SessionDescription.parse(sdp)
    except SdpError as exc:
        raise NegotiationFailed(FailureReason.MALFORMED_SDP, str(exc)) from None


def _check_transport(media: MediaDescription) -> None:
    if media.port == 0:
        raise NegotiationFailed(FailureReason.STREAM_REJECTED, "audio stream has port 0 (RFC 3264 §6)")
    if media.proto in _PLAIN_PROTOS:
        raise NegotiationFailed(FailureReason.NO_SRTP, f"{media.proto} is unencrypted; SRTP is required")
    if media.proto not in _SRTP_PROTOS:
        raise NegotiationFailed(FailureReason.UNSUPPORTED_TRANSPORT, f"transport {media.proto} unsupported")


def _usable_crypto(media: MediaDescription) -> list[tuple[CryptoAttribute, bytes]]:
    """Crypto lines we could run, with their decoded key‖salt, in the order written."""
    usable = []
    for attribute in media.attributes_named("crypto"):
        try:
            line = CryptoAttribute.parse(attribute.value or "")
            usable.append((line, line.usable_key_salt()))
        except SdesError:
            continue
    if not usable and not media.attributes_named("crypto"):
        raise NegotiationFailed(FailureReason.NO_SRTP, "RTP/SAVP stream without any a=crypto line")
    return usable


def _codec_name(media: MediaDescription, payload_type: int) -> str | None:
    rtpmap = media.rtpmap(payload_type)
    if rtpmap is None:  # static payload types need no rtpmap (RFC 3551 §6)
        return _STATIC_NAMES.get(payload_type)
    name = rtpmap.encoding.upper()
    known = RTP_CODECS.get(name)
    return name if known is not None and known[1] == rtpmap.clock_rate else None


def _pick_codec(media: MediaDescription, codecs: Sequence[str]) -> tuple[int, str]:
    try:
        for pt in media.payload_types:
            name = _codec_name(media, pt)
            if name is not None and name in codecs:
                return pt, name
    except SdpError as exc:
        raise NegotiationFailed(FailureReason.MALFORMED_SDP, str(exc)) from None
    raise NegotiationFailed(FailureReason.NO_COMMON_CODEC, f"none of {', '.join(codecs)} offered/answered")


def _telephone_event(media: MediaDescription) -> tuple[int, str] | None:
    """(payload type, events) of telephone-event/8000 (RFC 4733 §7.1.1), if present."""
    try:
        for pt, rtpmap in media.rtpmaps().items():
            if rtpmap.encoding.lower() == "telephone-event" and rtpmap.clock_rate == 8000:
                return pt, media.fmtp(pt) or "0-15"
    except SdpError:
        return None
    return None


def _send_ptime(media: MediaDescription, fallback: int) -> int:
    try:
        ptime = media.ptime
    except SdpError:
        return fallback
    return ptime if ptime is not None and 10 <= ptime <= 120 else fallback


def _remote_addresses(
    sd: SessionDescription, media: MediaDescription
) -> tuple[tuple[str, int], tuple[str, int]]:
    connection = sd.media_connection(media)
    if connection is None or connection.network_type != "IN" or "/" in connection.address:
        raise NegotiationFailed(
            FailureReason.NO_CONNECTION_ADDRESS, "no unicast c= line for the audio stream"
        )
    try:
        rtcp = media.rtcp
    except SdpError as exc:
        raise NegotiationFailed(FailureReason.MALFORMED_SDP, str(exc)) from None
    rtp = (connection.address, media.port)
    if rtcp is None:
        return rtp, (connection.address, media.port + 1)
    return rtp, (connection.address if rtcp.connection is None else rtcp.connection.address, rtcp.port)


def _audio_media(
    *,
    rtp_port: int,
    proto: str,
    formats: list[tuple[int, str]],
    telephone_event: tuple[int, str] | None,
    ptime_ms: int,
    direction: Direction,
    crypto: list[CryptoAttribute],
) -> MediaDescription:
    payload_types = [pt for pt, _ in formats]
    rtpmaps = [Attribute("rtpmap", f"{pt} {name}/{RTP_CODECS[name][1]}") for pt, name in formats]
    if telephone_event is not None:
        te_pt, events = telephone_event
        payload_types.append(te_pt)
        rtpmaps += [
            Attribute("rtpmap", f"{te_pt} telephone-event/8000"),
            Attribute("fmtp", f"{te_pt} {events}"),
        ]
    attributes = (
        *rtpmaps,
        Attribute("ptime", str(ptime_ms)),
        Attribute("rtcp", str(rtp_port + 1)),
        Attribute(direction.value),
        *(Attribute("crypto", str(line)) for line in crypto),
    )
    return MediaDescription("audio", rtp_port, proto, tuple(map(str, payload_types)), attributes=attributes)


def _session(
    local_address: str, session_id: str, version: int, media: MediaDescription | tuple[MediaDescription, ...]
) -> SessionDescription:
    try:
        address_type = "IP6" if ipaddress.ip_address(local_address).version == 6 else "IP4"
    except ValueError:  # a host name is allowed in c= and o= (RFC 8866 §5.7)
        address_type = "IP4"
    return SessionDescription(
        origin=Origin("-", session_id, version, "IN", address_type, local_address),
        connection=Connection("IN", address_type, local_address),
        media=media if isinstance(media, tuple) else (media,),
    )
