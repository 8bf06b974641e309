"""The SIP/TLS shell on 127.0.0.1: a pooled client link against a server link, certificates checked."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from emulator.certs import CertificateAuthority, IssuedCertificate
from media_worker.net.sip_pool import SipConnectFailed, SipConnectionPool
from media_worker.net.sip_transport import SipLink, serve_sip_tls
from media_worker.net.tls import client_context
from media_worker.sip import (
    CallAnswered,
    DialogTerminated,
    IncomingCall,
    SipEvent,
    SipUri,
    TerminationReason,
    chime_join_uri,
    chime_to_uri,
)

pytestmark = pytest.mark.loopback

E = TypeVar("E", bound=SipEvent)
HOST = "vc.localtest"
WAIT = 10.0
SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n"


@pytest.fixture(scope="module")
def authority() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture
def ca_file(authority: CertificateAuthority, tmp_path: Path) -> Path:
    return authority.write_ca(tmp_path / "ca.pem")


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A bound but not listening TCP port: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def server_context(cert: IssuedCertificate, directory: Path) -> ssl.SSLContext:
    cert_file, key_file = cert.write(directory, "server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


class Server:
    """A server-role SIP/TLS listener that answers every INVITE with 200 and records its links."""

    def __init__(self) -> None:
        self.links: list[SipLink] = []
        self.incoming: asyncio.Queue[tuple[SipLink, IncomingCall]] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, context: ssl.SSLContext) -> None:
        self.server = await serve_sip_tls("127.0.0.1", 0, context, self._accepted)
        self.port = int(self.server.sockets[0].getsockname()[1])

    def _accepted(self, link: SipLink) -> None:
        self.links.append(link)
        task = asyncio.get_running_loop().create_task(self._serve(link))
        self.tasks.add(task)

    async def _serve(self, link: SipLink) -> None:
        while True:
            event = await link.unsolicited.get()
            if isinstance(event, IncomingCall):
                self.incoming.put_nowait((link, event))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for link in self.links:
            link.close()
            await link.wait_closed()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def resolver_for(*addresses: tuple[str, int]) -> Callable[[str, int], Awaitable[list[tuple[str, int]]]]:
    async def resolve(host: str, port: int) -> list[tuple[str, int]]:
        assert host == HOST
        return list(addresses)

    return resolve


def invite(link: SipLink, token: str) -> tuple[str, asyncio.Queue[SipEvent]]:
    now = asyncio.get_running_loop().time()
    call_id = link.connection.invite(
        request_uri=chime_join_uri(join_number="+17035550122", host=HOST, join_token=token),
        from_uri=SipUri("sip", "+12065550100", HOST),
        to=chime_to_uri(join_number="+17035550122", host=HOST, join_token=token),
        body=SDP,
        now=now,
    )
    queue = link.open_call(call_id)
    link.flush()
    return call_id, queue


async def next_of(queue: asyncio.Queue[SipEvent], kind: type[E]) -> E:
    while True:
        event = await asyncio.wait_for(queue.get(), WAIT)
        if isinstance(event, kind):
            return event


def test_one_verified_connection_fails_over_and_carries_two_calls(
    authority: CertificateAuthority, ca_file: Path, tmp_path: Path, closed_port: int
) -> None:
    async def scenario() -> None:
        server = Server()
        await server.start(server_context(authority.issue(HOST), tmp_path))
        pool = SipConnectionPool(
            ssl_context=client_context(ca_file=ca_file),
            resolver=resolver_for(("127.0.0.1", closed_port), ("127.0.0.1", server.port)),
        )
        try:
            first, second = await asyncio.gather(pool.acquire(HOST, 5061), pool.acquire(HOST, 5061))
            assert first is second
            assert await pool.acquire(HOST, 5061) is first
            link = first
            assert link.local_address[0] == "127.0.0.1"
            calls = [invite(link, "token-a"), invite(link, "token-b")]
            for _ in calls:
                server_link, incoming = await asyncio.wait_for(server.incoming.get(), WAIT)
                server_link.open_call(incoming.call_id)
                server_link.connection.answer(
                    incoming.call_id, 200, now=asyncio.get_running_loop().time(), body=SDP
                )
                server_link.flush()
            answered = [await next_of(queue, CallAnswered) for _, queue in calls]
            assert [event.call_id for event in answered] == [call_id for call_id, _ in calls]
            assert len(server.links) == 1
            # Via sent-by and Contact name the TLS socket's own address.
            config = link.connection.configuration
            assert (config.via_host, config.via_port) == link.local_address
            assert str(config.contact) == f"sip:127.0.0.1:{link.local_address[1]};transport=tls"
        finally:
            await pool.close()
            await server.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("make_cert", "expected"),
    [
        (lambda ca: ca.issue("other.localtest"), "Hostname mismatch"),
        (lambda ca: CertificateAuthority.self_signed(HOST), "self-signed certificate"),
        (lambda ca: ca.issue_expired(HOST), "certificate has expired"),
    ],
    ids=["other-host", "self-signed", "expired"],
)
def test_unverifiable_certificates_are_refused_with_the_reason(
    authority: CertificateAuthority,
    ca_file: Path,
    tmp_path: Path,
    make_cert: Callable[[CertificateAuthority], IssuedCertificate],
    expected: str,
) -> None:
    async def scenario() -> SipConnectFailed:
        server = Server()
        await server.start(server_context(make_cert(authority), tmp_path))
        pool = SipConnectionPool(
            ssl_context=client_context(ca_file=ca_file), resolver=resolver_for(("127.0.0.1", server.port))
        )
        try:
            with pytest.raises(SipConnectFailed) as caught:
                await pool.acquire(HOST, 5061)
            return caught.value
        finally:
            await pool.close()
            await server.stop()

    failure = asyncio.run(scenario())
    assert failure.tls_error is not None
    assert "certificate verification failed" in failure.tls_error
    assert expected in failure.tls_error


def test_every_address_refusing_is_a_connect_failure_without_tls_error(
    ca_file: Path, closed_port: int
) -> None:
    async def scenario() -> SipConnectFailed:
        pool = SipConnectionPool(
            ssl_context=client_context(ca_file=ca_file), resolver=resolver_for(("127.0.0.1", closed_port))
        )
        with pytest.raises(SipConnectFailed) as caught:
            await pool.acquire(HOST, 5061)
        return caught.value

    failure = asyncio.run(scenario())
    assert failure.tls_error is None
    assert f"127.0.0.1:{closed_port}" in failure.reason


def test_a_context_without_verification_is_refused() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="verify"):
        SipConnectionPool(ssl_context=context)


def test_keepalive_is_answered_and_connection_loss_ends_calls(
    authority: CertificateAuthority, ca_file: Path, tmp_path: Path
) -> None:
    async def scenario() -> None:
        server = Server()
        await server.start(server_context(authority.issue(HOST), tmp_path))
        pool = SipConnectionPool(
            ssl_context=client_context(ca_file=ca_file), resolver=resolver_for(("127.0.0.1", server.port))
        )
        try:
            link = await pool.acquire(HOST, 5061)
            await asyncio.wait_for(link.ping(), WAIT)
            call_id, queue = invite(link, "token-c")
            server_link, incoming = await asyncio.wait_for(server.incoming.get(), WAIT)
            server_link.open_call(incoming.call_id)
            server_link.connection.answer(
                incoming.call_id, 200, now=asyncio.get_running_loop().time(), body=SDP
            )
            server_link.flush()
            await next_of(queue, CallAnswered)
            server_link.close()
            ended = await next_of(queue, DialogTerminated)
            assert ended.call_id == call_id
            assert ended.reason is TerminationReason.CONNECTION_LOST
            await asyncio.wait_for(link.wait_closed(), WAIT)
            assert not link.alive
            replacement = await pool.acquire(HOST, 5061)
            assert replacement is not link
            assert replacement.alive
        finally:
            await pool.close()
            await server.stop()

    asyncio.run(scenario())
