"""TLS client contexts for SIP over TLS to the Voice Connector.

Verification is always on: the certificate chain must lead to a trusted root and the certificate must name the
host we dialled (RFC 5922 §7, RFC 6125). The Voice Connector presents ``*.voiceconnector.chime.aws``-style
certificates, so the SNI and the checked name are the outbound host name, never an IP address. A custom CA
file (the local emulator's) adds roots; there is no switch that turns verification off.
"""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["TlsConfigurationError", "client_context", "describe_verification_error"]


class TlsConfigurationError(ValueError):
    """The local TLS configuration is unusable (e.g. the CA file is missing); fix the settings."""


def client_context(*, ca_file: str | Path | None = None) -> ssl.SSLContext:
    """A client context: TLS 1.2 or newer, chain and host name verified, system roots plus ``ca_file``."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # create_default_context already sets these; state them so a reader (and a test) sees the policy.
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if ca_file is not None:
        path = Path(ca_file)
        if not path.is_file():
            raise TlsConfigurationError(f"SIP_CA_FILE {str(path)!r} does not exist or is not a file")
        try:
            context.load_verify_locations(cafile=str(path))
        except ssl.SSLError as exc:
            raise TlsConfigurationError(f"SIP_CA_FILE {str(path)!r} holds no usable CA certificate") from exc
    return context


def describe_verification_error(exc: BaseException) -> str:
    """A one-line reason for a failed handshake, naming the verification failure when there is one."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verification failed: {exc.verify_message} (code {exc.verify_code})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    return f"TLS connection failed: {exc}"
