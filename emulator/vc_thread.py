"""The Voice Connector stand-in on its own event loop in a background thread, for synchronous callers.

The standalone command, benchmarks and tests written without asyncio use this: ``start()`` returns once
the port is bound, the blocking ``wait_for_call`` mirrors the async one, and ``faults`` is the same
thread-safe queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from emulator.vc_calls import CallState
from emulator.vc_faults import VoiceConnectorFaults
from emulator.voice_connector import VoiceConnectorEmulator

__all__ = ["VoiceConnectorThread"]

_T = TypeVar("_T")


class VoiceConnectorThread:
    """Runs a :class:`VoiceConnectorEmulator` (built from ``kwargs``) on a private loop in a daemon thread."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._emulator: VoiceConnectorEmulator | None = None

    @property
    def emulator(self) -> VoiceConnectorEmulator:
        if self._emulator is None:
            raise RuntimeError("the Voice Connector emulator is not running; call start() first")
        return self._emulator

    @property
    def port(self) -> int:
        return self.emulator.port

    @property
    def ca_file(self) -> Path:
        path = self.emulator.ca_file
        if path is None:
            raise RuntimeError("the Voice Connector emulator has no CA file yet")
        return path

    @property
    def faults(self) -> VoiceConnectorFaults:
        return self.emulator.faults

    def start(self) -> VoiceConnectorThread:
        if self._thread is not None:
            raise RuntimeError("already running")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="vc-emulator", daemon=True)
        self._thread.start()
        self._emulator = self._run(self._create())
        return self

    async def _create(self) -> VoiceConnectorEmulator:
        emulator = VoiceConnectorEmulator(**self._kwargs)
        await emulator.start()
        return emulator

    def stop(self) -> None:
        """Stop the emulator and its loop; safe to call twice."""
        loop, thread, emulator = self._loop, self._thread, self._emulator
        self._thread = None
        if loop is None or thread is None:
            return
        if emulator is not None:
            self._run(emulator.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        self._loop = None

    def __enter__(self) -> VoiceConnectorThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def call_soon(self, action: Callable[[], _T]) -> _T:
        """Run ``action`` on the emulator's loop (the only safe place to read records); return its result."""

        async def run() -> _T:
            return action()

        return self._run(run())

    def calls(self) -> list[dict[str, Any]]:
        """A snapshot of every call's summary."""
        return self.call_soon(lambda: [record.summary() for record in self.emulator.calls])

    def wait_for_call(
        self,
        call_id: str | None = None,
        *,
        state: CallState | Sequence[CallState] | None = None,
        timeout_s: float = 10.0,
    ) -> dict[str, Any]:
        """Block until the call is in ``state``; returns its summary."""

        async def wait() -> dict[str, Any]:
            record = await self.emulator.wait_for_call(call_id, state=state, timeout_s=timeout_s)
            return record.summary()

        return self._run(wait())

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        loop = self._loop
        if loop is None:
            coroutine.close()
            raise RuntimeError("the Voice Connector emulator loop is not running")
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coroutine, loop)
        return future.result()
