"""SIP over TLS on asyncio: one :class:`SipLink` per TLS connection drives one sans-I/O ``SipConnection``.

The link is an ``asyncio.Protocol``: bytes in go to ``receive_data``, the connection's output is written after
every input and every verb (``flush()``), and ONE ``loop.call_at`` timer follows ``get_timer()``. Events that
name a call go to the queue its owner opened with :meth:`SipLink.open_call`; everything else (an
``IncomingCall`` on the server side, stray messages) goes to ``unsolicited`` or to the ``on_unsolicited``
callback. The same shell serves both roles: the worker dials through :mod:`media_worker.net.sip_pool`, the
Voice Connector stand-in accepts with :func:`serve_sip_tls`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import ssl
from collections.abc import Callable
from typing import Final, cast

from ..sip import (
    ConnectionFailed,
    SipConfiguration,
    SipConnection,
    SipEvent,
    SipUri,
)

__all__ = [
    "KEEPALIVE_S",
    "PONG_TIMEOUT_S",
    "ConfigurationFactory",
    "KeepAliveFailed",
    "SipLink",
    "default_configuration",
    "host_for_uri",
    "serve_sip_tls",
]

logger = logging.getLogger(__name__)

KEEPALIVE_S: Final = 30.0
"""CRLF keep-alive interval while the connection is idle (RFC 5626 §4.4.1 suggests 95-120 s for TCP; NAT and
load-balancer idle timers on the way to the Voice Connector can be shorter)."""
PONG_TIMEOUT_S: Final = 10.0
"""RFC 5626 §4.4.1: no pong within 10 s means the flow is dead."""
TLS_SHUTDOWN_TIMEOUT_S: Final = 2.0
"""How long closing a TLS connection waits for the peer's close_notify before aborting it."""

ConfigurationFactory = Callable[[tuple[str, int]], SipConfiguration]
"""Builds a link's SIP configuration from the TLS socket's local (ip, port), known only once connected."""


class KeepAliveFailed(ConnectionError):
    """The peer did not answer a CRLF keep-alive in time; the connection has been closed."""


def host_for_uri(ip: str) -> str:
    """An IP literal as a SIP host: IPv6 references are bracketed (RFC 3261 §25.1)."""
    try:
        return f"[{ip}]" if ipaddress.ip_address(ip).version == 6 else ip
    except ValueError:
        return ip


def default_configuration(
    local: tuple[str, int], *, user_agent: str | None = "chime-dialout", contact_user: str | None = None
) -> SipConfiguration:
    """Via sent-by and Contact both name the TLS socket's own address (RFC 3261 §18.1.1, §8.1.1.8)."""
    host = host_for_uri(local[0])
    contact = SipUri("sip", contact_user, host, local[1], (("transport", "tls"),))
    return SipConfiguration(via_host=host, via_port=local[1], contact=contact, user_agent=user_agent)


class SipLink(asyncio.Protocol):
    """One TLS connection carrying one ``SipConnection`` (either role) and every call on it."""

    def __init__(
        self,
        configuration: ConfigurationFactory,
        *,
        urandom: Callable[[int], bytes] = os.urandom,
        keepalive_s: float | None = KEEPALIVE_S,
        on_unsolicited: Callable[[SipLink, SipEvent], None] | None = None,
        on_closed: Callable[[SipLink], None] | None = None,
    ) -> None:
        self._configuration = configuration
        self._urandom = urandom
        self._keepalive_s = keepalive_s
        self._on_unsolicited = on_unsolicited
        self._on_closed = on_closed
        self._connection: SipConnection | None = None
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._calls: dict[str, asyncio.Queue[SipEvent]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._keepalive: asyncio.TimerHandle | None = None
        self._last_activity = self._loop.time()
        self._pong_waiters: list[asyncio.Future[None]] = []
        self._pong_deadline: asyncio.TimerHandle | None = None
        self.unsolicited: asyncio.Queue[SipEvent] = asyncio.Queue()
        self.local_address: tuple[str, int] = ("", 0)
        self.peer_address: tuple[str, int] = ("", 0)
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.close_reason: str | None = None

    def __repr__(self) -> str:
        state = "alive" if self.alive else "closed"
        return f"SipLink({self.local_address} -> {self.peer_address}, {state}, calls={len(self._calls)})"

    # -- state --

    @property
    def connection(self) -> SipConnection:
        """The SIP user agent on this link; call a verb on it, then :meth:`flush`."""
        if self._connection is None:
            raise ConnectionError("the TLS connection is not established yet")
        return self._connection

    @property
    def alive(self) -> bool:
        return self._transport is not None and not self.closed.done()

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    # -- calls --

    def open_call(self, call_id: str) -> asyncio.Queue[SipEvent]:
        """Route the events of ``call_id`` to a new queue (register before the first :meth:`flush`)."""
        queue: asyncio.Queue[SipEvent] = asyncio.Queue()
        self._calls[call_id] = queue
        return queue

    def close_call(self, call_id: str) -> None:
        """Stop routing events of ``call_id`` (late ones are dropped)."""
        self._calls.pop(call_id, None)

    def flush(self) -> None:
        """Write what the connection queued, hand out its events and re-arm its timer."""
        connection = self._connection
        if connection is None:
            return
        data = connection.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)
            self._last_activity = self._loop.time()
        while (event := connection.next_event()) is not None:
            self._dispatch(event)
        self._arm_timer(connection.get_timer())

    async def ping(self) -> None:
        """Send a CRLF keep-alive now and wait for the peer's answer (RFC 5626 §4.4.1).

        Raises KeepAliveFailed if the connection closes first (it does PONG_TIMEOUT_S after an unanswered
        ping).
        """
        await asyncio.shield(self._send_ping())

    def close(self) -> None:
        """Close the TLS connection (calls still on it end with CONNECTION_LOST)."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    async def wait_closed(self) -> None:
        await asyncio.shield(self.closed)

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream protocol gets a stream transport; uvloop's TLS transport does not subclass
        # asyncio.Transport, so this is a cast, not an isinstance check.
        self._transport = cast(asyncio.Transport, transport)
        sockname = transport.get_extra_info("sockname")
        peername = transport.get_extra_info("peername")
        self.local_address = (str(sockname[0]), int(sockname[1]))
        self.peer_address = (str(peername[0]), int(peername[1])) if peername else ("", 0)
        self._connection = SipConnection(
            configuration=self._configuration(self.local_address), urandom=self._urandom
        )
        self._last_activity = self._loop.time()
        self._arm_keepalive()

    def data_received(self, data: bytes) -> None:
        connection = self._connection
        if connection is None:
            return
        now = self._loop.time()
        self._last_activity = now
        if self._pong_waiters:
            # Any bytes prove the flow alive; the CRLF pong itself is consumed by the framer.
            self._pong_answered()
        connection.receive_data(data, now)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed.done():
            return
        if self.close_reason is None:
            self.close_reason = f"connection lost: {exc}" if exc else "connection closed"
        for handle in (self._timer, self._keepalive, self._pong_deadline):
            if handle is not None:
                handle.cancel()
        self._timer = self._keepalive = self._pong_deadline = None
        connection = self._connection
        if connection is not None:
            connection.connection_lost()
            while (event := connection.next_event()) is not None:
                self._dispatch(event)
        for waiter in self._pong_waiters:
            if not waiter.done():
                waiter.set_exception(KeepAliveFailed(self.close_reason))
                waiter.exception()  # retrieved: a waiter nobody awaits must not warn
        self._pong_waiters.clear()
        self.closed.set_result(None)
        if self._on_closed is not None:
            self._on_closed(self)

    # -- internals --

    def _dispatch(self, event: SipEvent) -> None:
        call_id = getattr(event, "call_id", None)
        queue = self._calls.get(call_id) if isinstance(call_id, str) else None
        if queue is not None:
            queue.put_nowait(event)
            return
        if isinstance(event, ConnectionFailed):
            # The stream cannot be framed any more: the connection is useless (RFC 3261 §18.3).
            self._fail(event.reason)
        if self._on_unsolicited is not None:
            self._on_unsolicited(self, event)
        else:
            self.unsolicited.put_nowait(event)

    def _fail(self, reason: str) -> None:
        self.close_reason = reason
        if self._transport is not None:
            self._transport.abort()

    def _arm_timer(self, when: float | None) -> None:
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = None if when is None else self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        if self._connection is not None and self.alive:
            self._connection.handle_timer(self._loop.time())
            self.flush()

    def _arm_keepalive(self) -> None:
        if self._keepalive_s is not None and self.alive:
            when = self._last_activity + self._keepalive_s
            self._keepalive = self._loop.call_at(when, self._on_keepalive)

    def _on_keepalive(self) -> None:
        self._keepalive = None
        if not self.alive or self._keepalive_s is None:
            return
        if self._loop.time() - self._last_activity >= self._keepalive_s and not self._pong_waiters:
            self._send_ping()
        self._arm_keepalive()

    def _send_ping(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = self._loop.create_future()
        if not self.alive:
            waiter.set_exception(KeepAliveFailed(self.close_reason or "the connection is closed"))
            return waiter
        self._pong_waiters.append(waiter)
        if self._pong_deadline is None:
            self._pong_deadline = self._loop.call_later(PONG_TIMEOUT_S, self._fail, "keep-alive not answered")
        self.connection.send_ping()
        self.flush()
        return waiter

    def _pong_answered(self) -> None:
        if self._pong_deadline is not None:
            self._pong_deadline.cancel()
            self._pong_deadline = None
        for waiter in self._pong_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._pong_waiters.clear()


async def serve_sip_tls(
    host: str,
    port: int,
    ssl_context: ssl.SSLContext,
    on_link: Callable[[SipLink], None],
    *,
    configuration: ConfigurationFactory | None = None,
    urandom: Callable[[int], bytes] = os.urandom,
    keepalive_s: float | None = None,
) -> asyncio.Server:
    """Accept SIP over TLS: every accepted connection becomes a server-role :class:`SipLink`.

    ``on_link`` runs once the TLS handshake is done; read ``link.unsolicited`` for ``IncomingCall`` and
    open each call's queue with ``link.open_call(call_id)`` before answering it.
    """
    loop = asyncio.get_running_loop()
    make_configuration = configuration or (lambda local: default_configuration(local, user_agent=None))

    def factory() -> SipLink:
        return _ServerLink(make_configuration, on_link, urandom=urandom, keepalive_s=keepalive_s)

    return await loop.create_server(
        factory, host, port, ssl=ssl_context, ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT_S
    )


class _ServerLink(SipLink):
    """A link that announces itself to ``on_link`` once the handshake is complete."""

    def __init__(
        self,
        configuration: ConfigurationFactory,
        on_link: Callable[[SipLink], None],
        *,
        urandom: Callable[[int], bytes],
        keepalive_s: float | None,
    ) -> None:
        super().__init__(configuration, urandom=urandom, keepalive_s=keepalive_s)
        self._on_link = on_link

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._on_link(self)
