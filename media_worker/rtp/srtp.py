"""SRTP/SRTCP for the SDES crypto suites (RFC 3711, RFC 4568 §6.2, RFC 6188, RFC 7714), backed by libsrtp.

:class:`SrtpContext` is bytes in, bytes out: one libsrtp session per direction, built from the SDES
``inline:`` key‖salt of each side. Every session drives the libsrtp that pylibsrtp bundles through its cffi
binding (:class:`LibsrtpSession`: one reused buffer and length cell, no per-packet allocation). Four suites
map onto libsrtp's profiles (:class:`ProfileSession`). libsrtp has no profile for
AES_256_CM_HMAC_SHA1_80/_32 (RFC 6188) although it implements them, so :class:`Aes256CmSession` fills the
policy's crypto members with libsrtp's exported ``srtp_crypto_policy_set_aes_cm_256_hmac_sha1_{80,32}``.
Before the first such session is built a known-answer test proves the library really implements the
suite; otherwise :class:`SrtpUnsupportedError` says so plainly.

Key material never appears in a repr or an exception message.
"""

from __future__ import annotations

import ctypes
import enum
import functools
import importlib
from collections.abc import Callable
from typing import Any, Final, Protocol

import pylibsrtp

from .suites import SUITES, SrtpSuite

__all__ = [
    "REPLAY_WINDOW_SIZE",
    "Aes256CmSession",
    "LibsrtpSession",
    "ProfileSession",
    "SrtpContext",
    "SrtpError",
    "SrtpFailure",
    "SrtpUnsupportedError",
]

REPLAY_WINDOW_SIZE: Final = 1024
"""Replay window for inbound streams, as aiortc uses (RFC 3711 §3.3.2 requires at least 64)."""

# pylibsrtp's cffi binding: srtp_create/protect/unprotect/dealloc and struct srtp_policy_t. It ships no
# type stubs, hence Any.
_binding: Any = importlib.import_module("pylibsrtp._binding")
_ffi: Any = _binding.ffi
_lib: Any = _binding.lib
_srtp_protect: Any = _lib.srtp_protect
_srtp_unprotect: Any = _lib.srtp_unprotect

_PROFILES: Final[dict[str, int]] = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    "AEAD_AES_128_GCM": pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    "AEAD_AES_256_GCM": pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}
_AES_256_CM_TAGS: Final[dict[str, int]] = {"AES_256_CM_HMAC_SHA1_80": 80, "AES_256_CM_HMAC_SHA1_32": 32}

# libsrtp srtp_err_status_t values (srtp.h); pylibsrtp reports the same conditions by message text.
_STATUS_AUTH_FAIL: Final = 7
_STATUS_REPLAY_FAIL: Final = 9
_STATUS_REPLAY_OLD: Final = 10
_BUFFER_SIZE: Final = 1500  # same room as pylibsrtp's session buffer
_RTP_TRAILER: Final = 16 + 128  # SRTP_MAX_TAG_LEN + SRTP_MAX_MKI_LEN
_RTCP_TRAILER: Final = 4 + 16 + 128  # plus the E flag / SRTCP index word


class SrtpFailure(enum.Enum):
    """Why an SRTP/SRTCP packet was rejected."""

    AUTHENTICATION = "authentication"
    """Tag check failed: tampered, corrupt or protected with another key."""
    REPLAY = "replay"
    """Index already seen or older than the replay window (RFC 3711 §3.3.2)."""
    MALFORMED = "malformed"
    """Too short, too long, or otherwise not an SRTP packet."""


class SrtpError(Exception):
    """The peer's packet failed SRTP/SRTCP processing; drop it and count :attr:`failure`."""

    def __init__(self, failure: SrtpFailure, detail: str) -> None:
        super().__init__(f"SRTP {failure.value} failure: {detail}")
        self.failure = failure


class SrtpUnsupportedError(Exception):
    """The installed libsrtp cannot provide this suite (wrong pylibsrtp build or version)."""


def _status_failure(status: int) -> SrtpFailure:
    if status == _STATUS_AUTH_FAIL:
        return SrtpFailure.AUTHENTICATION
    if status in (_STATUS_REPLAY_FAIL, _STATUS_REPLAY_OLD):
        return SrtpFailure.REPLAY
    return SrtpFailure.MALFORMED


class _Session(Protocol):
    packet_buffer: bytearray
    packet_view: memoryview

    def protect(self, packet: bytes) -> bytes: ...
    def unprotect(self, packet: bytes) -> bytes: ...
    def protect_in_place(self, size: int) -> int: ...
    def unprotect_in_place(self, size: int) -> int: ...
    def protect_rtcp(self, packet: bytes) -> bytes: ...
    def unprotect_rtcp(self, packet: bytes) -> bytes: ...


@functools.cache
def _aes_256_cm_policy_setters() -> dict[int, Callable[[int], None]]:
    """libsrtp's ``srtp_crypto_policy_set_aes_cm_256_hmac_sha1_{80,32}``, keyed by tag bits.

    They are exported by the shared object pylibsrtp loaded; ``ctypes.CDLL`` on the same path returns the
    already-loaded library, so the functions fill structs that the cffi-bound ``srtp_create`` then reads.
    """
    try:
        library = ctypes.CDLL(_binding.__file__)
        setters: dict[int, Callable[[int], None]] = {
            80: library.srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80,
            32: library.srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32,
        }
    except (OSError, AttributeError) as exc:
        raise SrtpUnsupportedError(
            f"pylibsrtp {pylibsrtp.__version__} does not export the AES_256_CM crypto policies "
            "(RFC 6188); pin pylibsrtp==1.0.0 or drop the AES_256_CM suites from the offer"
        ) from exc
    for setter in setters.values():
        setter.argtypes = [ctypes.c_void_p]  # type: ignore[attr-defined]  # ctypes function attributes
        setter.restype = None  # type: ignore[attr-defined]  # ctypes function attributes
    return setters


class LibsrtpSession:
    """One direction of SRTP/SRTCP on our own libsrtp ``srtp_t``, whichever suite filled its policy.

    pylibsrtp's ``Session`` allocates a length cell and checks its argument types on every packet; this
    object reuses one buffer and one length cell, which matters at 100 packets per second per call, and
    offers the buffer itself (:attr:`packet_buffer`) so that a packet can be read, built and processed
    where it lies. It is not thread-safe. Subclasses fill the crypto policy they pass to :meth:`_create`.
    """

    __slots__ = ("_buffer", "_ctx", "_holder", "_length", "_view", "packet_buffer", "packet_view")

    def _create(self, key_salt: bytes, inbound: bool, fill_policy: Callable[[Any], None]) -> None:
        policy = _ffi.new("srtp_policy_t *")  # zeroed: no MKI, no extension-header encryption
        fill_policy(policy)
        key = _ffi.new("unsigned char[]", key_salt)
        policy.key = key
        policy.ssrc.type = _lib.ssrc_any_inbound if inbound else _lib.ssrc_any_outbound
        policy.window_size = REPLAY_WINDOW_SIZE
        policy.allow_repeat_tx = 1  # retransmitting an index is allowed on the send side, as aiortc does
        holder = _ffi.new("srtp_t *")
        status = _lib.srtp_create(holder, policy)
        _ffi.memmove(key, bytes(len(key_salt)), len(key_salt))  # libsrtp derived its session keys
        if status != _lib.srtp_err_status_ok:
            raise SrtpUnsupportedError(f"libsrtp refused the SRTP policy (status {status})")
        self._holder = _ffi.gc(holder, _dealloc)
        self._ctx = holder[0]
        # One buffer, seen three ways: libsrtp works on it through a cffi pointer, the bytes API copies
        # through a cffi buffer, and the in-place API hands out the bytearray itself (the cheapest object
        # for recv_into, struct.pack_into and unpack_from, and for indexing).
        self.packet_buffer = bytearray(_BUFFER_SIZE)
        """The packet buffer itself, for :meth:`protect_in_place` and :meth:`unprotect_in_place`: a packet
        written there is processed where it lies, without a copy in or out. Every call of this session
        reuses it, so a result must be used (sent, parsed) before the next one. Never resized: libsrtp
        holds a pointer into it."""
        self.packet_view = memoryview(self.packet_buffer)
        """A view of :attr:`packet_buffer`, to slice a result without copying it."""
        self._buffer = _ffi.from_buffer("unsigned char[]", self.packet_buffer)
        self._view = _ffi.buffer(self._buffer)
        self._length = _ffi.new("int *")

    def _process(self, function: Any, packet: bytes, trailer: int) -> bytes:
        size = len(packet)
        if size > _BUFFER_SIZE - trailer:
            raise SrtpError(SrtpFailure.MALFORMED, f"{size}-byte packet is too long")
        self._view[0:size] = packet
        length = self._length
        length[0] = size
        status = function(self._ctx, self._buffer, length)
        if status:
            raise SrtpError(_status_failure(status), f"libsrtp status {status}")
        result: bytes = self._view[0 : length[0]]
        return result

    # protect() and unprotect() can run for every media packet of a caller that holds bytes (100 a second
    # per call), so they repeat _process() inline rather than pay a second Python call each time. The
    # in-place pair below skips the copies in and out as well.

    def protect(self, packet: bytes) -> bytes:
        """Encrypt and authenticate one RTP packet."""
        size = len(packet)
        if size > _BUFFER_SIZE - _RTP_TRAILER:
            raise SrtpError(SrtpFailure.MALFORMED, f"{size}-byte packet is too long")
        self._view[0:size] = packet
        length = self._length
        length[0] = size
        status = _srtp_protect(self._ctx, self._buffer, length)
        if status:
            raise SrtpError(_status_failure(status), f"libsrtp status {status}")
        result: bytes = self._view[0 : length[0]]
        return result

    def unprotect(self, packet: bytes) -> bytes:
        """Verify and decrypt one SRTP packet; raises :class:`SrtpError`."""
        size = len(packet)
        if size > _BUFFER_SIZE:
            raise SrtpError(SrtpFailure.MALFORMED, f"{size}-byte packet is too long")
        self._view[0:size] = packet
        length = self._length
        length[0] = size
        status = _srtp_unprotect(self._ctx, self._buffer, length)
        if status:
            raise SrtpError(_status_failure(status), f"libsrtp status {status}")
        result: bytes = self._view[0 : length[0]]
        return result

    def protect_in_place(self, size: int) -> int:
        """Encrypt and authenticate the RTP packet in ``packet_buffer[:size]``; its new length."""
        if size > _BUFFER_SIZE - _RTP_TRAILER:
            raise SrtpError(SrtpFailure.MALFORMED, f"{size}-byte packet is too long")
        length = self._length
        length[0] = size
        status = _srtp_protect(self._ctx, self._buffer, length)
        if status:
            raise SrtpError(_status_failure(status), f"libsrtp status {status}")
        protected: int = length[0]
        return protected

    def unprotect_in_place(self, size: int) -> int:
        """Verify and decrypt the SRTP packet in ``packet_buffer[:size]``; its new length. Raises
        :class:`SrtpError` (the buffer then holds no usable packet)."""
        length = self._length
        length[0] = size
        status = _srtp_unprotect(self._ctx, self._buffer, length)
        if status:
            raise SrtpError(_status_failure(status), f"libsrtp status {status}")
        plain: int = length[0]
        return plain

    def protect_rtcp(self, packet: bytes) -> bytes:
        """Encrypt and authenticate one (compound) RTCP packet."""
        return self._process(_lib.srtp_protect_rtcp, packet, _RTCP_TRAILER)

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        """Verify and decrypt one SRTCP packet; raises :class:`SrtpError`."""
        return self._process(_lib.srtp_unprotect_rtcp, packet, 0)


class ProfileSession(LibsrtpSession):
    """One direction of a suite libsrtp knows as a profile (AES_CM_128_HMAC_SHA1_80/_32, AEAD_AES_*_GCM)."""

    __slots__ = ()

    def __init__(self, key_salt: bytes, *, profile: int, inbound: bool) -> None:
        def fill(policy: Any) -> None:
            for status in (
                _lib.srtp_crypto_policy_set_from_profile_for_rtp(_ffi.addressof(policy.rtp), profile),
                _lib.srtp_crypto_policy_set_from_profile_for_rtcp(_ffi.addressof(policy.rtcp), profile),
            ):
                if status != _lib.srtp_err_status_ok:
                    raise SrtpUnsupportedError(f"libsrtp has no SRTP profile {profile} (status {status})")

        self._create(key_salt, inbound, fill)

    def __repr__(self) -> str:
        return "ProfileSession()"


class Aes256CmSession(LibsrtpSession):
    """One direction of AES_256_CM_HMAC_SHA1_80/_32 (RFC 6188) on our own libsrtp ``srtp_t``.

    *key_salt* is the 46-byte master key‖salt; *tag_bits* is 80 or 32 for SRTP; SRTCP always uses the
    80-bit tag (RFC 6188 §6, RFC 4568 §6.2.2). *inbound* selects ``ssrc_any_inbound`` (replay window of
    :data:`REPLAY_WINDOW_SIZE`) or ``ssrc_any_outbound``. Retransmitting an index is allowed on the send
    side, as aiortc configures it.
    """

    __slots__ = ()

    def __init__(self, key_salt: bytes, *, tag_bits: int, inbound: bool) -> None:
        _verify_aes_256_cm_support()
        self._setup(key_salt, tag_bits, inbound)

    def __repr__(self) -> str:
        return "Aes256CmSession()"

    @classmethod
    def _unverified(cls, key_salt: bytes, *, tag_bits: int, inbound: bool) -> Aes256CmSession:
        session = cls.__new__(cls)
        session._setup(key_salt, tag_bits, inbound)
        return session

    def _setup(self, key_salt: bytes, tag_bits: int, inbound: bool) -> None:
        setters = _aes_256_cm_policy_setters()
        if tag_bits not in setters:
            raise ValueError(f"AES_256_CM tag must be 80 or 32 bits, not {tag_bits}")

        def fill(policy: Any) -> None:
            setters[tag_bits](int(_ffi.cast("uintptr_t", _ffi.addressof(policy.rtp))))
            setters[80](int(_ffi.cast("uintptr_t", _ffi.addressof(policy.rtcp))))

        self._create(key_salt, inbound, fill)


def _dealloc(holder: Any) -> None:
    _lib.srtp_dealloc(holder[0])


# Known answer for AES_256_CM_HMAC_SHA1_80: the AES-256 test of libsrtp's srtp_driver, whose master
# key‖salt is the RFC 6188 §7.2 key-derivation vector. The _32 tag is the first 4 bytes of the 80-bit one.
_KAT_KEY_SALT: Final = bytes.fromhex(
    "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b63b04803de51ee7c96423ab5b78d2"
)
_KAT_PLAIN: Final = bytes.fromhex("800f1234decafbadcafebabe" + "ab" * 16)
_KAT_ENCRYPTED: Final = bytes.fromhex("800f1234decafbadcafebabef1d9de17ff251ff1aa007774b0b4b40d")
_KAT_TAG_80: Final = bytes.fromhex("a08d9d9a5b3a55d8873b")


@functools.cache
def _verify_aes_256_cm_support() -> None:
    """Known-answer and round-trip test of libsrtp's AES_256_CM, once per process."""
    expected = {80: _KAT_ENCRYPTED + _KAT_TAG_80, 32: _KAT_ENCRYPTED + _KAT_TAG_80[:4]}
    for tag_bits, want in expected.items():
        sender = Aes256CmSession._unverified(_KAT_KEY_SALT, tag_bits=tag_bits, inbound=False)
        receiver = Aes256CmSession._unverified(_KAT_KEY_SALT, tag_bits=tag_bits, inbound=True)
        try:
            protected = sender.protect(_KAT_PLAIN)
            ok = protected == want and receiver.unprotect(protected) == _KAT_PLAIN
        except SrtpError:
            ok = False
        if not ok:
            raise SrtpUnsupportedError(
                f"the libsrtp bundled with pylibsrtp {pylibsrtp.__version__} failed the "
                f"AES_256_CM_HMAC_SHA1_{tag_bits} known-answer test; pin pylibsrtp==1.0.0"
            )


def _make_session(suite: SrtpSuite, key_salt: bytes, *, inbound: bool) -> _Session:
    if suite.name in _AES_256_CM_TAGS:
        return Aes256CmSession(key_salt, tag_bits=_AES_256_CM_TAGS[suite.name], inbound=inbound)
    return ProfileSession(key_salt, profile=_PROFILES[suite.name], inbound=inbound)


class SrtpContext:
    """SRTP for one call leg: protect what we send with *tx_key_salt*, check received with *rx_key_salt*.

    *suite_name* is the SDES crypto-suite (RFC 4568 §6.2 names); each key‖salt is the decoded ``inline:``
    blob of the matching ``a=crypto`` line (ours for tx, the peer's for rx). Unprotect failures raise
    :class:`SrtpError` carrying an :class:`SrtpFailure`; the caller drops and counts the packet.
    """

    __slots__ = (
        "protect_rtcp",
        "protect_rtp",
        "protect_rtp_in_place",
        "rx_buffer",
        "suite",
        "tx_buffer",
        "tx_view",
        "unprotect_rtcp",
        "unprotect_rtp",
        "unprotect_rtp_in_place",
    )

    protect_rtp: Callable[[bytes], bytes]
    """SRTP-protect one RTP packet we are about to send."""
    protect_rtcp: Callable[[bytes], bytes]
    """SRTCP-protect one compound RTCP packet we are about to send."""
    unprotect_rtp: Callable[[bytes], bytes]
    """Authenticate, replay-check and decrypt one received SRTP packet; raises :class:`SrtpError`."""
    unprotect_rtcp: Callable[[bytes], bytes]
    """Authenticate, replay-check and decrypt one received SRTCP packet; raises :class:`SrtpError`."""
    tx_buffer: bytearray
    """The send side's packet buffer (see :attr:`LibsrtpSession.packet_buffer`)."""
    tx_view: memoryview
    """A view of ``tx_buffer``, to slice a protected packet out without a copy."""
    protect_rtp_in_place: Callable[[int], int]
    """:meth:`protect_rtp` for the RTP packet already in ``tx_buffer[:size]``; the protected length."""
    rx_buffer: bytearray
    """The receive side's packet buffer: read a datagram straight into it."""
    unprotect_rtp_in_place: Callable[[int], int]
    """:meth:`unprotect_rtp` for the SRTP packet already in ``rx_buffer[:size]``; the plain length."""

    def __init__(self, suite_name: str, tx_key_salt: bytes, rx_key_salt: bytes) -> None:
        suite = SUITES.get(suite_name)
        if suite is None:
            raise ValueError(f"unsupported SRTP crypto-suite {suite_name!r}")
        for side, key_salt in (("tx", tx_key_salt), ("rx", rx_key_salt)):
            if not isinstance(key_salt, bytes) or len(key_salt) != suite.key_salt_length:
                length = len(key_salt) if isinstance(key_salt, bytes) else type(key_salt).__name__
                raise ValueError(
                    f"{side} key‖salt for {suite.name} must be {suite.key_salt_length} bytes, got {length}"
                )
        self.suite = suite
        tx = _make_session(suite, tx_key_salt, inbound=False)
        rx = _make_session(suite, rx_key_salt, inbound=True)
        # The sessions' own bound methods, not wrappers: one Python call per packet instead of two.
        self.protect_rtp = tx.protect
        self.protect_rtcp = tx.protect_rtcp
        self.unprotect_rtp = rx.unprotect
        self.unprotect_rtcp = rx.unprotect_rtcp
        self.tx_buffer = tx.packet_buffer
        self.tx_view = tx.packet_view
        self.protect_rtp_in_place = tx.protect_in_place
        self.rx_buffer = rx.packet_buffer
        self.unprotect_rtp_in_place = rx.unprotect_in_place

    def __repr__(self) -> str:
        return f"SrtpContext(suite={self.suite.name!r})"
