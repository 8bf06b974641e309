"""The SDES ``a=crypto`` attribute (RFC 4568 §9.1 grammar): parse it, print it, and mint fresh keys.

The grammar, with the RFC's names::

    crypto-attribute = "crypto:" tag 1*WSP crypto-suite 1*WSP key-params *(1*WSP session-param)
    tag              = 1*9DIGIT
    key-params       = key-param *(";" key-param)
    key-param        = key-method ":" key-info
    key-info (inline)= key-salt ["|" lifetime] ["|" mki]      ; RFC 4568 §6.1
    lifetime         = ["2^"] 1*(DIGIT)
    mki              = mki-value ":" mki-length               ; mki-length 1..128

Parsing checks the grammar only: a key that is not valid base64 or has the wrong length for its suite still
parses (so a capture round-trips) and is rejected later by ``KeyParam.key_salt`` / ``usable_key_salt``.
Key material is held in fields with ``repr=False`` and never appears in an exception message.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from media_worker.rtp.suites import suite_by_name

__all__ = ["CryptoAttribute", "KeyParam", "SdesError", "UnusableCrypto"]

_TAG: Final = re.compile(r"[0-9]{1,9}")
_SUITE: Final = re.compile(r"[A-Za-z0-9_]+")  # RFC 4568 §9.1: 1*(ALPHA / DIGIT / "_")
_KEY_METHOD: Final = re.compile(r"[A-Za-z0-9_-]+")
_KEY_SALT: Final = re.compile(r"[A-Za-z0-9+/=]+")
# RFC 4568 §9.1 allows any number of digits; 20 covers every 64-bit value and keeps int() cheap.
_LIFETIME: Final = re.compile(r"(2\^)?[0-9]{1,20}")
_MKI: Final = re.compile(r"([0-9]{1,20}):([0-9]{1,3})")
_SESSION_PARAM: Final = re.compile(r"[\x21-\x7e]+")  # 1*(VCHAR)
_WSP: Final = re.compile(r"[ \t]+")


class SdesError(ValueError):
    """An ``a=crypto`` value breaks the RFC 4568 §9.1 grammar. The message never contains key material."""


class UnusableCrypto(SdesError):
    """A grammatically valid ``a=crypto`` line that we cannot use (unknown suite, bad key, MKI, ...)."""


@dataclass(frozen=True, slots=True)
class KeyParam:
    """One ``inline:<key||salt>[|lifetime][|MKI:length]`` key parameter (RFC 4568 §6.1)."""

    key_salt_b64: str = field(repr=False)
    """The base64 text exactly as written; decode it with ``key_salt()``."""
    lifetime: str | None = None
    """``2^31`` or ``1048576`` as written: the number of packets the key may protect."""
    mki_value: int | None = None
    mki_length: int | None = None
    method: str = "inline"

    @property
    def lifetime_packets(self) -> int | None:
        """The lifetime as a packet count, or None if the line had none."""
        if self.lifetime is None:
            return None
        if self.lifetime.startswith("2^"):
            return int(2 ** min(int(self.lifetime[2:]), 64))
        return int(self.lifetime)

    def key_salt(self) -> bytes:
        """The decoded master key‖salt; raises UnusableCrypto if the text is not strict base64."""
        try:
            return base64.b64decode(self.key_salt_b64, validate=True)
        except (binascii.Error, ValueError):
            raise UnusableCrypto("crypto key is not valid base64") from None

    def __str__(self) -> str:
        text = f"{self.method}:{self.key_salt_b64}"
        if self.lifetime is not None:
            text += f"|{self.lifetime}"
        if self.mki_value is not None:
            text += f"|{self.mki_value}:{self.mki_length}"
        return text

    @classmethod
    def parse(cls, text: str) -> KeyParam:
        """Parse ``inline:...``; other key methods are not defined by RFC 4568 and are refused."""
        method, sep, info = text.partition(":")
        if not sep or not _KEY_METHOD.fullmatch(method):
            raise SdesError("crypto key parameter lacks a key method")
        if method != "inline":
            raise SdesError("crypto key method is not 'inline' (RFC 4568 §6.1)")
        key_salt, *rest = info.split("|")
        if not _KEY_SALT.fullmatch(key_salt):
            raise SdesError("crypto key is empty or contains non-base64 characters")
        lifetime: str | None = None
        mki_value: int | None = None
        mki_length: int | None = None
        if len(rest) > 2:
            raise SdesError("crypto key parameter has too many '|' fields")
        for part in rest:
            mki = _MKI.fullmatch(part)
            if mki is not None and mki_value is None:
                mki_value, mki_length = int(mki.group(1)), int(mki.group(2))
                if not 1 <= mki_length <= 128:
                    raise SdesError("crypto MKI length must be 1..128 (RFC 4568 §9.1)")
            elif _LIFETIME.fullmatch(part) and lifetime is None and mki_value is None:
                lifetime = part
            else:
                raise SdesError("crypto key parameter has a malformed lifetime or MKI field")
        return cls(key_salt, lifetime, mki_value, mki_length, method)


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """The value of one ``a=crypto:`` attribute: tag, suite, key parameters and session parameters."""

    tag: int
    suite: str
    keys: tuple[KeyParam, ...]
    session_params: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute:
        """Parse the attribute value (the text after ``a=crypto:``); raises SdesError on a grammar error."""
        fields = _WSP.split(value.strip(" \t"))
        if len(fields) < 3:
            raise SdesError("crypto attribute needs a tag, a suite and key parameters (RFC 4568 §9.1)")
        tag, suite, key_params, *session_params = fields
        if not _TAG.fullmatch(tag):
            raise SdesError("crypto tag must be 1 to 9 digits")
        if not _SUITE.fullmatch(suite):
            raise SdesError("crypto suite name is malformed")
        for param in session_params:
            if not _SESSION_PARAM.fullmatch(param):
                raise SdesError("crypto session parameter is malformed")
        keys = tuple(KeyParam.parse(part) for part in key_params.split(";"))
        return cls(int(tag), suite, keys, tuple(session_params))

    @classmethod
    def inline(cls, tag: int, suite: str, key_salt: bytes, *, lifetime: str | None = None) -> CryptoAttribute:
        """A single-key line for ``key_salt``, which must have the suite's exact key‖salt length."""
        known = suite_by_name(suite)
        if known is None:
            raise ValueError(f"unsupported SRTP suite {suite!r}")
        if len(key_salt) != known.key_salt_length:
            raise ValueError(f"{suite} needs {known.key_salt_length} bytes of key and salt")
        if not 1 <= tag <= 999_999_999:
            raise ValueError("crypto tag must be 1..999999999")
        if lifetime is not None and not _LIFETIME.fullmatch(lifetime):
            raise ValueError("lifetime must be digits or 2^digits (RFC 4568 §6.1)")
        encoded = base64.b64encode(key_salt).decode("ascii")
        return cls(tag, suite, (KeyParam(encoded, lifetime),))

    @classmethod
    def generate(cls, tag: int, suite: str, urandom: Callable[[int], bytes]) -> CryptoAttribute:
        """A line with a fresh master key and salt drawn from ``urandom`` (RFC 4568 §6.1)."""
        known = suite_by_name(suite)
        if known is None:
            raise ValueError(f"unsupported SRTP suite {suite!r}")
        key_salt = urandom(known.key_salt_length)
        if len(key_salt) != known.key_salt_length:
            raise ValueError("urandom returned the wrong number of bytes")
        return cls.inline(tag, suite, key_salt)

    def usable_key_salt(self) -> bytes:
        """The key‖salt if this line is one we can run with pylibsrtp, else raise UnusableCrypto.

        Usable means: a suite we implement, exactly one inline key of the suite's length, no MKI (pylibsrtp
        has no MKI support, and several keys need MKI: RFC 4568 §6.1), and no session parameters (we
        implement none of KDR, UNENCRYPTED_SRTP, ... and must not ignore them: RFC 4568 §6.3). A lifetime
        is accepted.
        """
        known = suite_by_name(self.suite)
        if known is None:
            raise UnusableCrypto("crypto suite is not supported")
        if len(self.keys) != 1:
            raise UnusableCrypto("crypto line carries several keys (needs MKI, unsupported)")
        key = self.keys[0]
        if key.mki_value is not None:
            raise UnusableCrypto("crypto line uses an MKI (unsupported)")
        if self.session_params:
            raise UnusableCrypto("crypto line has session parameters (unsupported)")
        key_salt = key.key_salt()
        if len(key_salt) != known.key_salt_length:
            raise UnusableCrypto(f"crypto key has the wrong length for {self.suite}")
        return key_salt

    def __str__(self) -> str:
        keys = ";".join(str(key) for key in self.keys)
        return " ".join((str(self.tag), self.suite, keys, *self.session_params))
