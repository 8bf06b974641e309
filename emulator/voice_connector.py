"""A local Amazon Chime Voice Connector for meeting joins: SIP over TLS, SRTP media, join-token checks.

It listens on 127.0.0.1 with a certificate from a CA it generates at start (``ca_file`` is what a client
trusts), accepts INVITEs shaped like the documented meeting join, and refuses the rest with the codes listed
in :mod:`emulator.vc_checks`. An accepted call gets a 180 and a 200 whose SDP picks the emulator's suite and
codec preference (never plain RTP: an RTP/AVP offer gets 488), a steady tone, and a recording of what the
caller sends. With a :class:`MeetingsEmulator` attached, join tokens are the ones it issued, a connected call
shows up as a PSTN attendee joining, and deleting the attendee or ending the meeting sends BYE.

Faults for the next calls are queued on ``faults`` (see :mod:`emulator.vc_faults`). The SIP/TLS plumbing is
the worker's own server-role shell (:func:`media_worker.net.sip_transport.serve_sip_tls`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import ssl
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

from emulator.certs import CertificateAuthority
from emulator.meetings_api import MeetingsEmulator
from emulator.meetings_events import ATTENDEE_DELETED, MEETING_ENDED
from emulator.meetings_validation import MeetingsApiError
from emulator.vc_call import CallEnvironment, EmulatedCall
from emulator.vc_calls import CallBook, CallRecord, CallState
from emulator.vc_checks import JoinRejected, TokenValidator, check_join_request
from emulator.vc_faults import CallFault, VoiceConnectorFaults
from emulator.vc_media import DEFAULT_TONE_HZ
from media_worker.audio import codec_by_name
from media_worker.net.media_engine import MediaEngine, PortAllocator
from media_worker.net.sip_transport import SipLink, default_configuration, serve_sip_tls
from media_worker.rtp import suite_by_name
from media_worker.sip import IncomingCall, SipEvent, redact_uri

__all__ = ["DEFAULT_CODECS", "DEFAULT_JOIN_NUMBER", "DEFAULT_SUITES", "VoiceConnectorEmulator"]

_T = TypeVar("_T")

DEFAULT_JOIN_NUMBER: Final = "+17035550122"
DEFAULT_SUITES: Final = ("AES_CM_128_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
"""Answer preference: the SDES suites the service is reported to prefer, strongest-common first."""
DEFAULT_CODECS: Final = ("PCMU", "PCMA")
DEFAULT_RTP_PORTS: Final = (30000, 39999)
_WAIT_S: Final = 10.0


class VoiceConnectorEmulator:
    """The stand-in on one asyncio loop: ``await start()``, dial ``127.0.0.1:port``, ``await stop()``.

    ``token_validator(token) -> (meeting_id, attendee_id) | None`` decides which join tokens are live; it
    defaults to ``meetings.is_token_valid`` when ``meetings`` is given, else any non-empty token is accepted.
    ``join_number`` matches with or without its '+'. ``suites``/``codecs`` are the answer preference.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        server_name: str = "vc.localtest",
        join_number: str = DEFAULT_JOIN_NUMBER,
        token_validator: TokenValidator | None = None,
        meetings: MeetingsEmulator | None = None,
        suites: Sequence[str] = DEFAULT_SUITES,
        codecs: Sequence[str] = DEFAULT_CODECS,
        tone_hz: float = DEFAULT_TONE_HZ,
        rtp_ports: tuple[int, int] = DEFAULT_RTP_PORTS,
        workdir: Path | None = None,
        urandom: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if not suites or any(suite_by_name(suite) is None for suite in suites):
            raise ValueError(f"suites must name supported SRTP suites, got {list(suites)}")
        if not codecs or any(codec_by_name(codec) is None for codec in codecs):
            raise ValueError(f"codecs must be ones the audio package has (PCMU, PCMA), got {list(codecs)}")
        self.host = host
        self.port = port
        self.server_name = server_name
        self.join_number = join_number
        self.meetings = meetings
        self.suites = tuple(suites)
        self.codecs = tuple(codecs)
        self.tone_hz = tone_hz
        self.faults = VoiceConnectorFaults()
        if token_validator is None and meetings is not None:
            token_validator = meetings.is_token_valid
        self._token_validator = token_validator
        self._rtp_ports = rtp_ports
        self._urandom = urandom
        self._workdir = workdir
        self._own_workdir: Path | None = None
        self._book = CallBook()
        self._active: dict[tuple[SipLink, str], EmulatedCall] = {}
        self._link_tasks: set[asyncio.Task[None]] = set()
        self._call_tasks: dict[tuple[SipLink, str], asyncio.Task[None]] = {}
        self._queues: dict[tuple[SipLink, str], asyncio.Queue[SipEvent]] = {}
        self._links: set[SipLink] = set()
        self._server: asyncio.Server | None = None
        self._engine: MediaEngine | None = None
        self._engine_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._env: CallEnvironment | None = None
        self.ca_file: Path | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Generate the PKI, bind, start the media clock; ``port`` and ``ca_file`` are set afterwards."""
        if self._server is not None:
            raise RuntimeError("the Voice Connector emulator is already running")
        loop = asyncio.get_running_loop()
        self._loop = loop
        workdir = self._workdir
        if workdir is None:
            workdir = self._own_workdir = Path(tempfile.mkdtemp(prefix="vc-emulator-"))
        workdir.mkdir(parents=True, exist_ok=True)
        context = self._server_context(workdir)
        self._engine = MediaEngine()
        self._engine_task = loop.create_task(self._engine.run(), name="vc-emulator-media")
        self._env = CallEnvironment(
            engine=self._engine,
            ports=PortAllocator(self.host, *self._rtp_ports),
            local_address=self.host,
            server_name=self.server_name,
            codecs=self.codecs,
            suites=self.suites,
            tone_hz=self.tone_hz,
            notify=self._book.changed,
            on_connected=self._attendee_joined,
            on_ended=self._attendee_left,
            urandom=self._urandom,
        )
        self._server = await serve_sip_tls(
            self.host,
            self.port,
            context,
            self._accepted,
            configuration=lambda local: default_configuration(
                local, user_agent="vc-emulator", contact_user=self.join_number
            ),
            urandom=self._urandom,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        if self.meetings is not None:
            self.meetings.add_listener(self._meeting_event)

    def _server_context(self, workdir: Path) -> ssl.SSLContext:
        authority = CertificateAuthority("chime-dialout Voice Connector emulator CA")
        self.ca_file = authority.write_ca(workdir / "ca.pem")
        cert_file, key_file = authority.issue(self.server_name, self.host).write(workdir, "voice-connector")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_file, key_file)
        return context

    async def stop(self) -> None:
        """Close every connection (their calls end), stop media, forget the PKI if we made its directory."""
        if self.meetings is not None:
            self.meetings.remove_listener(self._meeting_event)
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for link in list(self._links):
            link.close()
        for link in list(self._links):
            await link.wait_closed()
        for task in list(self._link_tasks):
            await task
        if server is not None:
            await server.wait_closed()
        if self._engine is not None and self._engine_task is not None:
            self._engine.stop()
            await self._engine_task
            self._engine = self._engine_task = None
        if self._own_workdir is not None:
            shutil.rmtree(self._own_workdir, ignore_errors=True)
            self._own_workdir = None

    async def __aenter__(self) -> VoiceConnectorEmulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- inspection and control --------------------------------------------------------------------------

    @property
    def calls(self) -> list[CallRecord]:
        """Every call so far, in arrival order (rejected ones included)."""
        return list(self._book.calls.values())

    def call(self, call_id: str) -> CallRecord:
        record = self._book.get(call_id)
        if record is None:
            raise KeyError(f"no call {call_id!r} reached the emulator")
        return record

    def add_fault(self, fault: CallFault, times: int = 1) -> None:
        self.faults.add(fault, times)

    async def wait_until(self, condition: Callable[[], _T | None], timeout_s: float = _WAIT_S) -> _T:
        """The first truthy ``condition()``, re-checked whenever a call changes (TimeoutError otherwise)."""
        return await self._book.wait_until(condition, timeout_s)

    async def wait_for_call(
        self,
        call_id: str | None = None,
        *,
        state: CallState | Sequence[CallState] | None = None,
        timeout_s: float = _WAIT_S,
    ) -> CallRecord:
        """The call ``call_id`` (or the latest call) once it is in ``state`` (any state when None)."""
        wanted = {state} if isinstance(state, CallState) else set(state or ())

        def match() -> CallRecord | None:
            record = self._book.get(call_id) if call_id is not None else next(reversed(self.calls), None)
            if record is None or (wanted and record.state not in wanted):
                return None
            return record

        return await self.wait_until(match, timeout_s)

    async def wait_for_recording(self, call_id: str, frames: int, timeout_s: float = _WAIT_S) -> bytes:
        """At least ``frames`` 20 ms frames the emulator heard on ``call_id``."""

        def enough() -> bytes | None:
            record = self._book.get(call_id)
            pcm = b"" if record is None else record.recording
            return pcm if len(pcm) >= frames * 320 else None

        return await self.wait_until(enough, timeout_s)

    def hangup(self, call_id: str, reason: str = "local-hangup") -> None:
        """End ``call_id`` from the emulator's side (BYE, or 480 while ringing)."""
        for (_, active_id), call in list(self._active.items()):
            if active_id == call_id:
                call.hangup(reason)

    def hangup_where(self, predicate: Callable[[CallRecord], bool], reason: str) -> int:
        """Hang up every live call whose record matches; returns how many."""
        matched = [call for call in self._active.values() if predicate(call.record)]
        for call in matched:
            call.hangup(reason)
        return len(matched)

    def drop_connections(self) -> None:
        """Close every TLS connection without a BYE, as a restarting service would."""
        for link in list(self._links):
            link.close()

    # -- SIP ---------------------------------------------------------------------------------------------

    def _accepted(self, link: SipLink) -> None:
        self._links.add(link)
        task = asyncio.get_running_loop().create_task(self._serve_link(link), name="vc-emulator-link")
        self._link_tasks.add(task)
        task.add_done_callback(self._link_tasks.discard)

    async def _serve_link(self, link: SipLink) -> None:
        closed = asyncio.ensure_future(link.wait_closed())
        try:
            while True:
                getter = asyncio.ensure_future(link.unsolicited.get())
                done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                self._unsolicited(link, getter.result())
            while not link.unsolicited.empty():
                self._unsolicited(link, link.unsolicited.get_nowait())
        finally:
            closed.cancel()
            self._link_closed(link)

    def _unsolicited(self, link: SipLink, event: SipEvent) -> None:
        if isinstance(event, IncomingCall):
            self._incoming(link, event)
            return
        call_id = getattr(event, "call_id", None)
        call = self._active.get((link, call_id)) if isinstance(call_id, str) else None
        if call is not None:  # arrived in the same read as its INVITE, before the call's queue existed
            self._handle(link, call, event)

    def _incoming(self, link: SipLink, event: IncomingCall) -> None:
        env = self._env
        if env is None:
            return
        record = self._book.add(
            CallRecord(
                call_id=event.call_id,
                request_uri=redact_uri(event.request_uri),
                caller=event.from_.uri.user,
                fault=CallFault(),
            )
        )
        call = EmulatedCall(link, record, env)
        decision = check_join_request(
            event.request_uri,
            event.from_,
            event.to,
            join_numbers=(self.join_number,),
            token_validator=self._token_validator,
        )
        if isinstance(decision, JoinRejected):
            call.reject(decision.status, decision.reason, check=decision.check)
            return
        record.fault = self.faults.take()
        key = (link, event.call_id)
        self._active[key] = call
        queue = self._queues[key] = link.open_call(event.call_id)
        call.start(event, decision)
        if record.is_final:
            self._forget(key)
            return
        self._call_tasks[key] = asyncio.get_running_loop().create_task(
            self._serve_call(key, call, queue), name="vc-emulator-call"
        )

    async def _serve_call(
        self, key: tuple[SipLink, str], call: EmulatedCall, queue: asyncio.Queue[SipEvent]
    ) -> None:
        try:
            while not call.record.is_final:
                self._handle(key[0], call, await queue.get())
        finally:
            self._call_tasks.pop(key, None)

    def _handle(self, link: SipLink, call: EmulatedCall, event: SipEvent) -> None:
        call.handle(event)
        if call.record.is_final:
            self._forget((link, call.record.call_id))

    def _forget(self, key: tuple[SipLink, str]) -> None:
        self._active.pop(key, None)
        self._queues.pop(key, None)
        key[0].close_call(key[1])

    def _link_closed(self, link: SipLink) -> None:
        """Calls whose dialog events are still queued get them now; calls that had none end here."""
        self._links.discard(link)
        for key, call in [(k, c) for k, c in self._active.items() if k[0] is link]:
            task = self._call_tasks.pop(key, None)
            if task is not None:
                task.cancel()
            queue = self._queues.get(key)
            while queue is not None and not queue.empty() and not call.record.is_final:
                call.handle(queue.get_nowait())
            call.connection_lost()
            self._forget(key)

    # -- meetings ----------------------------------------------------------------------------------------

    def _attendee_joined(self, record: CallRecord) -> None:
        if self.meetings is not None and record.meeting_id and record.attendee_id:
            with contextlib.suppress(MeetingsApiError):  # deleted a moment ago: the BYE is on its way
                self.meetings.join_attendee(record.meeting_id, record.attendee_id, network_type="PSTN")
                record.history.append("attendee-joined")

    def _attendee_left(self, record: CallRecord) -> None:
        if self.meetings is None or not record.meeting_id or not record.attendee_id:
            return
        if "attendee-joined" not in record.history:
            return
        with contextlib.suppress(MeetingsApiError):  # deleted attendee or ended meeting: nothing to leave
            self.meetings.leave_attendee(record.meeting_id, record.attendee_id)

    def _meeting_event(self, event_type: str, detail: dict[str, Any]) -> None:
        """Meetings listener; runs on whichever thread changed the store."""
        loop = self._loop
        if loop is None or loop.is_closed() or event_type not in (ATTENDEE_DELETED, MEETING_ENDED):
            return
        with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
            loop.call_soon_threadsafe(self._on_meeting_event, event_type, dict(detail))

    def _on_meeting_event(self, event_type: str, detail: dict[str, Any]) -> None:
        meeting_id = str(detail.get("meetingId", ""))
        if event_type == ATTENDEE_DELETED:
            attendee_id = str(detail.get("attendeeId", ""))
            self.hangup_where(
                lambda r: r.meeting_id == meeting_id and r.attendee_id == attendee_id, "attendee-deleted"
            )
        else:
            self.hangup_where(lambda r: r.meeting_id == meeting_id, "meeting-ended")
