"""The media worker service: builds the production objects from settings and runs them until SIGTERM.

One process: the shared media clock (``MediaEngine``), one TLS connection per Voice Connector host
(``SipConnectionPool``), the ``Supervisor`` consuming the dial queue, the health server, and the metrics
flusher. SIGTERM/SIGINT start a drain; the process exits 0 once it is done (bounded by the drain timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from chalicelib.call_registry import CallRegistry
from chalicelib.contract import DialRequest
from chalicelib.wire_logging import quiet_wire_loggers
from media_worker.call import Call
from media_worker.call_job import CallFactory, DialedCall, StateListener
from media_worker.call_plan import CallPlan
from media_worker.dial_queue import DialQueueConsumer
from media_worker.health import HealthServer
from media_worker.media_files import AudioLibrary, RecordedCall, RecordingStore, lazy_client
from media_worker.metrics import WorkerMetrics
from media_worker.net.media_engine import MediaEngine, PortAllocator
from media_worker.net.sip_pool import SipConnectionPool
from media_worker.net.tls import client_context
from media_worker.settings import WorkerSettings
from media_worker.supervisor import Supervisor, SupervisorConfig

__all__ = ["SERVICE_NAME", "call_factory", "serve"]

SERVICE_NAME = "media-worker"
#: A received message stays invisible this long; the job extends it at half-time until the call is up.
VISIBILITY_S = 60


def call_factory(
    settings: WorkerSettings,
    *,
    pool: SipConnectionPool,
    engine: MediaEngine,
    ports: PortAllocator,
    s3_client: Callable[[], Any] | None = None,
    logger: Logger | None = None,
) -> CallFactory:
    """The production ``CallFactory``: a real SIP/TLS + SRTP ``Call`` per job, its recording stored."""
    s3 = s3_client or lazy_client("s3")
    library = AudioLibrary(s3_client=s3)
    store = RecordingStore(
        directory=Path(settings.recordings_dir), bucket=settings.recordings_bucket, s3_client=s3
    )

    def make(job: DialRequest, on_state: StateListener) -> DialedCall:
        call = Call(
            CallPlan.from_dial_request(job, settings),
            pool=pool,
            engine=engine,
            ports=ports,
            media_public_ip=settings.media_public_ip,
            media_timeout_s=settings.media_timeout_s,
            on_state=on_state,
            load_audio=library.load,
        )

        def stored(location: str) -> None:
            if logger is not None:
                logger.info("recording stored", extra={"call_id": job.call_id, "location": location})

        return RecordedCall(call, job, store, on_stored=stored)

    return make


async def serve(settings: WorkerSettings, *, logger: Logger, aws: dict[str, Any] | None = None) -> int:
    """Run the service until drained; returns the exit status. ``aws`` holds extra boto3 client options."""
    settings.require_service()
    quiet_wire_loggers()  # SQS bodies and call records carry join tokens
    queue_url, table = settings.dial_queue_url, settings.calls_table
    if queue_url is None or table is None:  # require_service() raised already; this narrows the types
        raise AssertionError("queue and table are required")
    options = aws or {}
    sqs = boto3.client("sqs", **options)
    dynamodb = boto3.client("dynamodb", **options)
    engine = MediaEngine()
    pool = SipConnectionPool(ssl_context=client_context(ca_file=settings.sip_ca_file))
    ports = PortAllocator(settings.media_bind_ip, settings.rtp_port_min, settings.rtp_port_max)
    metrics = WorkerMetrics(service=SERVICE_NAME)
    supervisor = Supervisor(
        config=SupervisorConfig.from_settings(settings),
        queue=DialQueueConsumer(sqs, queue_url, visibility_s=VISIBILITY_S),
        registry=CallRegistry(dynamodb, table, clock=time.time),
        make_call=call_factory(settings, pool=pool, engine=engine, ports=ports, logger=logger),
        metrics=metrics,
        logger=logger,
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, supervisor.drain)
    media = asyncio.create_task(engine.run(), name="media-clock")
    flusher = asyncio.create_task(metrics.run(), name="metrics-flush")
    logger.info(
        "media worker started", extra={"worker_id": settings.worker_id, "max_calls": settings.max_calls}
    )
    try:
        async with HealthServer(supervisor, settings.health_host, settings.health_port) as health:
            logger.info("health server listening", extra={"host": settings.health_host, "port": health.port})
            await supervisor.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        engine.stop()
        flusher.cancel()
        for task in (media, flusher):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await pool.close()
        metrics.flush()
    logger.info("media worker stopped", extra={"worker_id": settings.worker_id})
    return 0
