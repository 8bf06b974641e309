"""Independent pure-Python SRTP/SRTCP for the AES-CM + HMAC-SHA1 suites, used only to check libsrtp.

Written from RFC 3711 (§4.1.1 AES counter mode, §4.2 HMAC-SHA1, §4.3 key derivation, §3.4 SRTCP) and
RFC 6188 (the same with a 256-bit AES key). Slow and simple on purpose: AES comes from `cryptography`, one
ECB block per counter value.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

LABEL_RTP_ENCRYPTION = 0x00
LABEL_RTP_AUTH = 0x01
LABEL_RTP_SALT = 0x02
LABEL_RTCP_ENCRYPTION = 0x03
LABEL_RTCP_AUTH = 0x04
LABEL_RTCP_SALT = 0x05


def aes_cm_keystream(key: bytes, iv: int, length: int) -> bytes:
    """RFC 3711 §4.1.1: AES(key, IV + i) for i = 0, 1, ..., the counter wrapping in 128 bits."""
    blocks = (length + 15) // 16
    counters = b"".join(((iv + i) % (1 << 128)).to_bytes(16, "big") for i in range(blocks))
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - counter mode built by hand
    return (encryptor.update(counters) + encryptor.finalize())[:length]


def derive(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """RFC 3711 §4.3.1, key_derivation_rate 0: x = (label << 48) XOR master_salt; AES-CM from x * 2^16."""
    x = (label << 48) ^ int.from_bytes(master_salt, "big")
    return aes_cm_keystream(master_key, x << 16, length)


def _xor(data: bytes, keystream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, keystream, strict=True))


@dataclass(frozen=True)
class SessionKeys:
    encryption: bytes
    auth: bytes
    salt: bytes


def session_keys(master_key: bytes, master_salt: bytes, *, rtcp: bool = False) -> SessionKeys:
    base = LABEL_RTCP_ENCRYPTION if rtcp else LABEL_RTP_ENCRYPTION
    return SessionKeys(
        encryption=derive(master_key, master_salt, base, len(master_key)),
        auth=derive(master_key, master_salt, base + 1, 20),
        salt=derive(master_key, master_salt, base + 2, 14),
    )


def _iv(salt: bytes, ssrc: int, index: int) -> int:
    # RFC 3711 §4.1.1: IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16)
    return (int.from_bytes(salt, "big") << 16) ^ (ssrc << 64) ^ (index << 16)


def _rtp_header_length(packet: bytes) -> int:
    length = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        length += 4 + 4 * struct.unpack_from("!H", packet, length + 2)[0]
    return length


class ReferenceSrtpSender:
    """Sender side of one SRTP stream: tracks the rollover counter from the sequence numbers it sends."""

    def __init__(self, key_salt: bytes, key_length: int, tag_length: int) -> None:
        master_key, master_salt = key_salt[:key_length], key_salt[key_length:]
        self.rtp = session_keys(master_key, master_salt)
        self.rtcp = session_keys(master_key, master_salt, rtcp=True)
        self.tag_length = tag_length
        self.roc = 0
        self.last_seq: int | None = None

    def protect_rtp(self, packet: bytes) -> bytes:
        seq, ssrc = struct.unpack_from("!H", packet, 2)[0], struct.unpack_from("!I", packet, 8)[0]
        if self.last_seq is not None and seq < self.last_seq and self.last_seq - seq > 0x8000:
            self.roc += 1  # RFC 3711 §3.3.1: the sender bumps ROC when SEQ wraps
        self.last_seq = seq
        index = (self.roc << 16) | seq
        header_length = _rtp_header_length(packet)
        payload = packet[header_length:]
        encrypted = packet[:header_length] + _xor(
            payload, aes_cm_keystream(self.rtp.encryption, _iv(self.rtp.salt, ssrc, index), len(payload))
        )
        tag = hmac.new(self.rtp.auth, encrypted + struct.pack("!I", self.roc), hashlib.sha1).digest()
        return encrypted + tag[: self.tag_length]

    def protect_rtcp(self, packet: bytes, index: int) -> bytes:
        """RFC 3711 §3.4: encrypt after the first 8 octets, append E|SRTCP index, then an 80-bit tag."""
        ssrc = struct.unpack_from("!I", packet, 4)[0]
        body = packet[8:]
        keystream = aes_cm_keystream(self.rtcp.encryption, _iv(self.rtcp.salt, ssrc, index), len(body))
        protected = packet[:8] + _xor(body, keystream) + struct.pack("!I", 0x8000_0000 | index)
        tag = hmac.new(self.rtcp.auth, protected, hashlib.sha1).digest()
        return protected + tag[:10]
