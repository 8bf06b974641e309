"""Watching the demo run: the Voice Connector's milestones, a live status table, and a console that never
prints a secret.

- ``VcMilestones`` timestamps what the Voice Connector emulator saw per call (INVITE, 200 OK, first media
  heard, end); it re-checks on every change of the emulator's call book, on the emulator's own loop.
- ``Monitor`` polls the three views of each call (the call record in DynamoDB, the worker's ``/calls``, the
  emulator's call record) and shows them: a table redrawn every second on a terminal, otherwise one line per
  state change.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

from chalicelib.call_registry import CallRecord, CallRegistry
from emulator.vc_calls import CallState
from emulator.vc_thread import VoiceConnectorThread

__all__ = ["Console", "Monitor", "VcMilestones"]

_REDACTED: Final = "***"
_ANSWERED: Final = frozenset({CallState.ANSWERED, CallState.CONNECTED, CallState.ENDED})


@dataclass
class Console:
    """Narrative output; secrets registered with it are replaced (and remembered as a leak) if they appear."""

    out: TextIO
    quiet: bool
    live: bool
    secrets: list[str] = field(default_factory=list)
    leaked: bool = False
    printed: list[str] = field(default_factory=list)
    _table: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def redact(self, text: str) -> str:
        for secret in list(self.secrets):
            if secret and secret in text:
                self.leaked = True
                text = text.replace(secret, _REDACTED)
        return text

    def say(self, text: str = "") -> None:
        text = self.redact(text)
        with self._lock:
            self.printed.append(text)
            if self.quiet:
                return
            self._erase_table()
            print(text, file=self.out, flush=True)
            self._draw_table()

    def table(self, lines: Sequence[str]) -> None:
        """Redraw the live table under the narrative (terminal only)."""
        if self.quiet or not self.live:
            return
        with self._lock:
            self._erase_table()
            self._table = [self.redact(line) for line in lines]
            self._draw_table()

    def end_table(self) -> None:
        """Remove the live table for good (the summary follows)."""
        with self._lock:
            self._erase_table()
            self._table = []
            self.live = False

    def _erase_table(self) -> None:
        if self._table:
            self.out.write(f"\x1b[{len(self._table)}F\x1b[J")  # up N lines, clear to the end of screen

    def _draw_table(self) -> None:
        if self._table:
            self.out.write("\n".join(self._table) + "\n")
            self.out.flush()


@dataclass
class VcMilestones:
    """Wall-clock times of what the Voice Connector emulator saw, per SIP Call-ID."""

    clock: Callable[[], float] = time.time
    times: dict[str, dict[str, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _future: Future[object] | None = None

    def start(self, vc: VoiceConnectorThread) -> None:
        emulator = vc.emulator
        loop = emulator._loop
        if loop is None:
            raise RuntimeError("the Voice Connector emulator is not running")

        def observe() -> None:
            now = self.clock()
            with self.lock:
                for record in emulator.calls:
                    seen = self.times.setdefault(record.call_id, {"invite": now})
                    if record.state in _ANSWERED and record.status == 200:
                        seen.setdefault("answered", now)
                    if record.recorder is not None and record.recorder.frames_recorded:
                        seen.setdefault("first_media", now)
                    if record.is_final:
                        seen.setdefault("ended", now)
            return None  # never satisfied: keep observing until cancelled

        self._future = asyncio.run_coroutine_threadsafe(emulator.wait_until(observe, 24 * 3600.0), loop)

    def stop(self) -> None:
        if self._future is not None:
            self._future.cancel()
            self._future = None

    def of(self, sip_call_id: str) -> dict[str, float]:
        with self.lock:
            return dict(self.times.get(sip_call_id, {}))


@dataclass
class CallView:
    """The latest of the three views of one call."""

    label: str
    record: CallRecord | None = None
    worker: dict[str, Any] | None = None
    vc: dict[str, Any] | None = None

    def key(self) -> tuple[Any, ...]:
        record, worker, vc = self.record, self.worker or {}, self.vc or {}
        return (
            None if record is None else (record.state, record.desired),
            worker.get("phase"),
            vc.get("state"),
        )


class Monitor:
    """Polls the call views every ``period_s`` and shows them through the console."""

    def __init__(
        self,
        console: Console,
        registry: CallRegistry,
        worker_calls: Callable[[], list[dict[str, Any]]],
        vc: VoiceConnectorThread,
        *,
        started: float,
        period_s: float = 0.5,
    ) -> None:
        self._console = console
        self._registry = registry
        self._worker_calls = worker_calls
        self._vc = vc
        self._started = started
        self._period_s = period_s
        self._meetings: dict[str, str] = {}  # meeting id -> label
        self._views: dict[str, CallView] = {}
        self._keys: dict[str, tuple[Any, ...]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_table = 0.0

    def watch_meeting(self, meeting_id: str, label: str) -> None:
        with self._lock:
            self._meetings[meeting_id] = label

    def views(self) -> dict[str, CallView]:
        with self._lock:
            return dict(self._views)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="demo-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.poll()

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            self.poll()

    def poll(self) -> None:
        """Read every view once; report changes."""
        with self._lock:
            meetings = dict(self._meetings)
        try:
            records = [r for meeting_id in meetings for r in self._registry.calls_for_meeting(meeting_id)]
            worker = {c["call_id"]: c for c in self._worker_calls() if c.get("call_id")}
            vc = {c["call_id"]: c for c in self._vc.calls()}
        except Exception:  # a service shutting down under the last poll: keep what we had
            return
        for record in records:
            with self._lock:
                view = self._views.setdefault(
                    record.call_id, CallView(f"{meetings[record.meeting_id]}/{record.target_name}")
                )
                view.record = record
                if record.call_id in worker:
                    view.worker = worker[record.call_id]
                elif view.worker is not None:  # the job is over: keep its last figures
                    view.worker = {**view.worker, "phase": "done"}
                sip = record.sip_call_id or (view.worker or {}).get("sip_call_id")
                if sip in vc:
                    view.vc = vc[sip]
            self._report(record.call_id, view)
        now = time.monotonic()
        if now - self._last_table >= 1.0:
            self._last_table = now
            self._console.table(self.table_lines())

    def _report(self, call_id: str, view: CallView) -> None:
        key = view.key()
        if self._console.live or self._keys.get(call_id) == key:
            self._keys[call_id] = key
            return
        self._keys[call_id] = key
        record, worker, vc = view.record, view.worker or {}, view.vc or {}
        state = "-" if record is None else f"{record.state} (desired {record.desired})"
        elapsed = time.time() - self._started
        self._console.say(
            f"   [{elapsed:5.1f}s] {view.label}: record {state}; worker {worker.get('phase', '-')}; "
            f"connector {vc.get('state', '-')}"
        )

    def table_lines(self) -> list[str]:
        header = (
            f"{'call':<26} {'record':<10} {'desired':<9} {'worker':<10} {'connector':<10} {'codec':<5} "
            f"{'sent':>6} {'recv':>6} {'loss%':>6} {'jit ms':>6} {'MOS':>4}  end"
        )
        lines = [f"-- live status, t+{time.time() - self._started:4.1f}s " + "-" * 70, header]
        for view in self.views().values():
            lines.append(_row(view))
        return lines


def _row(view: CallView) -> str:
    record, worker, vc = view.record, view.worker or {}, view.vc or {}
    media = worker.get("media") or (record.media_stats if record else None) or {}
    cells = [
        f"{view.label[:26]:<26}",
        f"{(record.state if record else '-'):<10}",
        f"{(record.desired if record else '-'):<9}",
        f"{worker.get('phase', '-')!s:<10}",
        f"{vc.get('state', '-')!s:<10}",
        f"{vc.get('codec') or '-'!s:<5}",
        f"{media.get('packets_sent', 0):>6}",
        f"{media.get('packets_received', 0):>6}",
        f"{media.get('loss_pct', 0.0):>6}",
        f"{media.get('jitter_ms', 0.0):>6}",
        f"{media.get('mos', '-'):>4} ",
        record.end_reason if record and record.end_reason else "",
    ]
    return " ".join(cells)
