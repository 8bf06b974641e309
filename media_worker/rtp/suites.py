"""SDES crypto suites (RFC 4568 §6.2, RFC 6188, RFC 7714): names and key material sizes.

Shared by SDP negotiation (to mint and check ``inline:`` keys) and SRTP (to build sessions), so the two can
never disagree about how long a key is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["SUITES", "SrtpSuite", "suite_by_name"]


@dataclass(frozen=True, slots=True)
class SrtpSuite:
    """One SDES crypto-suite: its SDP name and the master key/salt sizes in bytes."""

    name: str
    key_length: int
    salt_length: int
    rtp_auth_tag_length: int
    """Bytes appended to each SRTP packet: HMAC tag for the CM suites, the AEAD tag for GCM."""

    @property
    def key_salt_length(self) -> int:
        """Length of the ``inline:`` key‖salt blob before base64 (RFC 4568 §6.1)."""
        return self.key_length + self.salt_length


SUITES: Final[dict[str, SrtpSuite]] = {
    s.name: s
    for s in (
        SrtpSuite("AES_CM_128_HMAC_SHA1_80", 16, 14, 10),  # RFC 4568 §6.2.1
        SrtpSuite("AES_CM_128_HMAC_SHA1_32", 16, 14, 4),  # RFC 4568 §6.2.2
        SrtpSuite("AES_256_CM_HMAC_SHA1_80", 32, 14, 10),  # RFC 6188 §7.1
        SrtpSuite("AES_256_CM_HMAC_SHA1_32", 32, 14, 4),  # RFC 6188 §7.1
        SrtpSuite("AEAD_AES_128_GCM", 16, 12, 16),  # RFC 7714 §14.2
        SrtpSuite("AEAD_AES_256_GCM", 32, 12, 16),  # RFC 7714 §14.2
    )
}


def suite_by_name(name: str) -> SrtpSuite | None:
    """The suite called ``name`` (case-sensitive, as RFC 4568 registers it), or None if unsupported."""
    return SUITES.get(name)
