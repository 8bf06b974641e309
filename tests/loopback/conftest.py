"""The worker's Call against the local Voice Connector emulator, all on 127.0.0.1.

``vc.localtest`` (the emulator certificate's name) resolves to the emulator through the pool's injectable
resolver, so TLS verifies the host name exactly as it would against the real service.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from emulator.voice_connector import VoiceConnectorEmulator
from media_worker.call import Call
from media_worker.call_plan import CallPlan
from media_worker.net.media_engine import MediaEngine, PortAllocator
from media_worker.net.sip_pool import SipConnectionPool
from media_worker.net.tls import client_context

VC_HOST = "vc.localtest"
TOKEN = "loop+back/token=="
WAIT = 15.0


@dataclass
class Harness:
    emulator: VoiceConnectorEmulator
    pool: SipConnectionPool
    engine: MediaEngine
    ports: PortAllocator

    def plan(self, host: str = VC_HOST, **options: Any) -> CallPlan:
        uri = f"sip:+17035550122@{host}:{self.emulator.port};transport=tls;X-chime-join-token={TOKEN}"
        return CallPlan.for_uri(uri, "+12065550100", **options)

    def call(self, plan: CallPlan, *, media_timeout_s: float = 30.0, **options: Any) -> Call:
        return Call(
            plan,
            pool=self.pool,
            engine=self.engine,
            ports=self.ports,
            media_public_ip=None,
            media_timeout_s=media_timeout_s,
            **options,
        )


@asynccontextmanager
async def harness() -> AsyncIterator[Harness]:
    async with VoiceConnectorEmulator(rtp_ports=(43000, 43999)) as emulator:
        assert emulator.ca_file is not None

        async def resolve(host: str, port: int) -> list[tuple[str, int]]:
            return [("127.0.0.1", port)]  # every test name lives on the emulator

        pool = SipConnectionPool(ssl_context=client_context(ca_file=emulator.ca_file), resolver=resolve)
        engine = MediaEngine()
        clock = asyncio.create_task(engine.run())
        try:
            yield Harness(emulator, pool, engine, PortAllocator("127.0.0.1", 44000, 44999))
        finally:
            await pool.close()
            engine.stop()
            await clock
