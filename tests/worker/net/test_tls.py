"""TLS verification policy: the worker accepts only a certificate for the dialled name from a trusted CA."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from emulator.certs import CertificateAuthority, IssuedCertificate
from media_worker.net.tls import TlsConfigurationError, client_context, describe_verification_error

HOST = "vc.localtest"


async def _handshake(server_cert: IssuedCertificate, ca_file: Path, tmp_path: Path) -> str:
    cert_path, key_path = server_cert.write(tmp_path, "server")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_path, key_path)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(ca_file=ca_file), server_hostname=HOST
        )
        version = writer.get_extra_info("ssl_object").version()
        writer.close()
        return str(version)
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def ca(tmp_path: Path) -> tuple[CertificateAuthority, Path]:
    authority = CertificateAuthority()
    return authority, authority.write_ca(tmp_path / "ca.pem")


def test_certificate_for_the_dialled_name_is_accepted(
    ca: tuple[CertificateAuthority, Path], tmp_path: Path
) -> None:
    authority, ca_file = ca
    version = asyncio.run(_handshake(authority.issue(HOST), ca_file, tmp_path))
    assert version in {"TLSv1.2", "TLSv1.3"}


@pytest.mark.parametrize(
    ("make_cert", "reason"),
    [
        (lambda a: a.issue("other.localtest"), "Hostname mismatch"),
        (lambda a: CertificateAuthority.self_signed(HOST), "self-signed certificate"),
        (lambda a: a.issue_expired(HOST), "certificate has expired"),
    ],
    ids=["other-host", "self-signed", "expired"],
)
def test_untrusted_certificates_are_refused(
    ca: tuple[CertificateAuthority, Path],
    tmp_path: Path,
    make_cert: object,
    reason: str,
) -> None:
    authority, ca_file = ca
    assert callable(make_cert)
    with pytest.raises(ssl.SSLCertVerificationError) as excinfo:
        asyncio.run(_handshake(make_cert(authority), ca_file, tmp_path))
    assert reason in describe_verification_error(excinfo.value)


def test_context_policy_is_strict_and_has_no_off_switch() -> None:
    context = client_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


def test_missing_ca_file_is_a_clear_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(TlsConfigurationError, match="does not exist"):
        client_context(ca_file=tmp_path / "absent.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(TlsConfigurationError, match="no usable CA"):
        client_context(ca_file=junk)
