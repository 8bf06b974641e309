"""One TLS connection per Voice Connector (host, port), shared by every call the process places there.

A new connection resolves ALL addresses of the host name every time (the OS resolver honours DNS TTLs; the
Voice Connector's addresses change as instances move) and tries them in order until one connects. TLS
always verifies the chain and the host name, with SNI = the host name even though the socket connects to an
IP address (RFC 5922 §7). A dead connection is never revived: the next call opens a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Final

from ..sip import IncomingCall, SipEvent
from .sip_transport import KEEPALIVE_S, TLS_SHUTDOWN_TIMEOUT_S, SipLink, default_configuration
from .tls import describe_verification_error

__all__ = ["CONNECT_TIMEOUT_S", "Resolver", "SipConnectFailed", "SipConnectionPool", "system_resolver"]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S: Final = 10.0
"""Per address: TCP connect plus TLS handshake."""

Resolver = Callable[[str, int], Awaitable[list[tuple[str, int]]]]
"""(host, port) -> every (ip, port) to try, in order."""


class SipConnectFailed(ConnectionError):
    """No address of the Voice Connector accepted a verified TLS connection.

    ``tls_error`` is set when a handshake failed (e.g. "certificate verification failed: ..."): check the
    host name, the CA file and the clock rather than the network.
    """

    def __init__(self, reason: str, tls_error: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tls_error = tls_error


async def system_resolver(host: str, port: int) -> list[tuple[str, int]]:
    """Every address of ``host`` from the OS resolver (A and AAAA), in its order, without duplicates."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    seen: list[tuple[str, int]] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = (str(sockaddr[0]), int(sockaddr[1]))
        if address not in seen:
            seen.append(address)
    return seen


class SipConnectionPool:
    """Hands out the live :class:`SipLink` for a (host, port), connecting when there is none."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        urandom: Callable[[int], bytes] = os.urandom,
        keepalive_s: float | None = KEEPALIVE_S,
        user_agent: str | None = "chime-dialout",
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        resolver: Resolver = system_resolver,
    ) -> None:
        if not ssl_context.check_hostname or ssl_context.verify_mode != ssl.CERT_REQUIRED:
            raise ValueError("the SIP TLS context must verify the certificate and the host name")
        self._ssl = ssl_context
        self._urandom = urandom
        self._keepalive_s = keepalive_s
        self._user_agent = user_agent
        self._connect_timeout_s = connect_timeout_s
        self._resolver = resolver
        self._links: dict[tuple[str, int], SipLink] = {}
        self._connecting: dict[tuple[str, int], asyncio.Task[SipLink]] = {}

    @property
    def links(self) -> dict[tuple[str, int], SipLink]:
        """The live links by (host, port)."""
        return {key: link for key, link in self._links.items() if link.alive}

    async def acquire(self, host: str, port: int) -> SipLink:
        """The live link to ``host:port``; concurrent callers share one connection attempt."""
        key = (host.lower(), port)
        link = self._links.get(key)
        if link is not None and link.alive:
            return link
        task = self._connecting.get(key)
        if task is None:
            task = asyncio.create_task(self._connect(host, port), name=f"sip-connect {host}:{port}")
            self._connecting[key] = task
            task.add_done_callback(partial(self._connected, key))
        return await asyncio.shield(task)

    async def close(self) -> None:
        """Close every link (calls still on them end with CONNECTION_LOST)."""
        for task in list(self._connecting.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, SipConnectFailed):
                await task
        links = list(self._links.values())
        self._links.clear()
        for link in links:
            link.close()
        for link in links:
            await link.wait_closed()

    # -- internals --

    def _connected(self, key: tuple[str, int], task: asyncio.Task[SipLink]) -> None:
        self._connecting.pop(key, None)
        if not task.cancelled() and task.exception() is None:
            self._links[key] = task.result()

    def _forget(self, link: SipLink) -> None:
        for key, known in list(self._links.items()):
            if known is link:
                del self._links[key]

    async def _connect(self, host: str, port: int) -> SipLink:
        try:
            addresses = await self._resolver(host, port)
        except OSError as exc:
            raise SipConnectFailed(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise SipConnectFailed(f"{host} has no addresses")
        loop = asyncio.get_running_loop()
        failures: list[str] = []
        tls_error: str | None = None
        for ip, ip_port in addresses:
            try:
                _, link = await asyncio.wait_for(
                    loop.create_connection(
                        self._new_link,
                        host=ip,
                        port=ip_port,
                        ssl=self._ssl,
                        server_hostname=host,  # SNI and the name checked, even when dialling an IP
                        ssl_handshake_timeout=self._connect_timeout_s,
                        # Some peers never answer close_notify; don't let a drain wait 30 s for them.
                        ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT_S,
                    ),
                    self._connect_timeout_s,
                )
            except ssl.SSLError as exc:
                tls_error = describe_verification_error(exc)
                failures.append(f"{ip}:{ip_port}: {tls_error}")
            except (OSError, TimeoutError) as exc:
                failures.append(f"{ip}:{ip_port}: {exc or type(exc).__name__}")
            else:
                logger.info("SIP/TLS connected to %s (%s:%d) from %s", host, ip, ip_port, link.local_address)
                return link
            logger.warning("SIP/TLS connect to %s failed: %s", host, failures[-1])
        raise SipConnectFailed(f"could not connect to {host}:{port}: " + "; ".join(failures), tls_error)

    def _new_link(self) -> SipLink:
        return SipLink(
            partial(default_configuration, user_agent=self._user_agent),
            urandom=self._urandom,
            keepalive_s=self._keepalive_s,
            on_unsolicited=_refuse_unsolicited,
            on_closed=self._forget,
        )


def _refuse_unsolicited(link: SipLink, event: SipEvent) -> None:
    """The worker only dials out: an INVITE towards it is declined (RFC 3261 §21.6.2); the rest is logged."""
    if isinstance(event, IncomingCall):
        link.connection.reject(event.call_id, 603, now=asyncio.get_running_loop().time())
        link.flush()
        return
    logger.info("SIP event without a call on %r: %s", link, type(event).__name__)
