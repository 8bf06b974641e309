"""The Voice Connector stand-in over real TLS and SRTP on 127.0.0.1, driven by the worker's own SIP stack."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from emulator import MeetingsEmulator
from emulator.meetings_events import ATTENDEE_JOINED, ATTENDEE_LEFT
from emulator.vc_calls import CallRecord, CallState
from emulator.vc_checks import JoinAccepted, JoinRejected, check_join_request
from emulator.vc_faults import CallFault
from emulator.vc_media import ToneRecorderApp
from emulator.vc_thread import VoiceConnectorThread
from emulator.voice_connector import VoiceConnectorEmulator
from media_worker.audio import codec_by_name, tone_level
from media_worker.negotiation import (
    MediaParams,
    NegotiationFailed,
    Offer,
    answer_offer,
    build_offer,
    process_answer,
)
from media_worker.net.media_engine import MediaEngine, MediaLeg, PortAllocator
from media_worker.net.sip_pool import SipConnectionPool
from media_worker.net.sip_transport import SipLink
from media_worker.net.tls import client_context
from media_worker.rtp import MediaInactive, MediaSession, SrtpContext
from media_worker.sdp import SessionDescription
from media_worker.sip import (
    CallAnswered,
    CallFailed,
    CallProgressed,
    DialogTerminated,
    FailureCategory,
    NameAddr,
    OfferReceived,
    Party,
    SessionRefreshed,
    SipEvent,
    SipResponse,
    SipUri,
    StreamFramer,
    TerminationReason,
    chime_join_uri,
    chime_to_uri,
)

pytestmark = pytest.mark.loopback

_E = TypeVar("_E", bound=SipEvent)
WAIT_S = 10.0
CLIENT_TONE_HZ = 440.0
FROM = SipUri.parse("sip:+12065550100@127.0.0.1")
CLIENT_PORTS = PortAllocator("127.0.0.1", 43000, 43999)


@dataclass
class Env:
    vc: VoiceConnectorEmulator
    meetings: MeetingsEmulator
    pool: SipConnectionPool
    engine: MediaEngine
    meeting_id: str
    attendee_id: str
    token: str = field(repr=False)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def new_attendee(self, user: str) -> tuple[str, str]:
        created = self.meetings.store.create_attendee(self.meeting_id, {"ExternalUserId": user})
        return created["Attendee"]["AttendeeId"], created["Attendee"]["JoinToken"]


def _run(test: Callable[[Env], Awaitable[None]], **vc_options: Any) -> None:
    async def main() -> None:
        meetings = MeetingsEmulator()
        meeting = meetings.store.create_meeting(
            {"ClientRequestToken": "vc-test", "MediaRegion": "us-east-1", "ExternalMeetingId": "vc-test"}
        )["Meeting"]["MeetingId"]
        attendee = meetings.store.create_attendee(meeting, {"ExternalUserId": "dialout-1"})["Attendee"]
        async with VoiceConnectorEmulator(meetings=meetings, **vc_options) as vc:
            assert vc.ca_file is not None
            pool = SipConnectionPool(ssl_context=client_context(ca_file=vc.ca_file), keepalive_s=None)
            engine = MediaEngine()
            clock = asyncio.create_task(engine.run())
            env = Env(vc, meetings, pool, engine, meeting, attendee["AttendeeId"], attendee["JoinToken"])
            meetings.add_listener(lambda kind, detail: env.events.append((kind, detail)))
            try:
                await test(env)
            finally:
                await pool.close()
                engine.stop()
                await clock

    asyncio.run(main())


@dataclass
class Client:
    """One call from the worker's side: its link, event queue, offer and (once answered) media."""

    env: Env
    link: SipLink
    queue: asyncio.Queue[SipEvent]
    call_id: str
    offer: Offer
    leg: MediaLeg
    params: MediaParams | None = None
    recorder: ToneRecorderApp | None = None
    inactive: asyncio.Event = field(default_factory=asyncio.Event)
    heard: asyncio.Event = field(default_factory=asyncio.Event)

    async def next(self, kind: type[_E]) -> _E:
        """The next event of ``kind`` (earlier events of other kinds are skipped)."""
        async with asyncio.timeout(WAIT_S):
            while True:
                event = await self.queue.get()
                if isinstance(event, kind):
                    return event

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def start_media(self, answer: CallAnswered) -> MediaParams:
        params = process_answer(self.offer, answer.body.decode())
        codec = codec_by_name(params.codec)
        assert codec is not None
        self.recorder = ToneRecorderApp(CLIENT_TONE_HZ, on_frame=self._on_frame)
        session = MediaSession(
            srtp=SrtpContext(params.suite, params.local_key_salt, params.remote_key_salt),
            payload_type=params.payload_type,
            now=self.now(),
            inactivity_timeout=0.5,
        )
        self.leg.on_event = lambda event: self.inactive.set() if isinstance(event, MediaInactive) else None
        self.leg.start(params, session, codec, self.recorder)
        self.env.engine.add(self.leg)
        self.params = params
        return params

    def _on_frame(self) -> None:
        if self.recorder is not None and self.recorder.frames_recorded >= 50:
            self.heard.set()

    def bye(self) -> None:
        self.link.connection.bye(self.call_id, now=self.now())
        self.link.flush()

    def close(self) -> None:
        if self.params is not None:
            self.env.engine.remove(self.leg)
        else:
            self.leg.rtp_sock.close()
            self.leg.rtcp_sock.close()


async def dial(
    env: Env,
    *,
    token: str | None = None,
    join_number: str = "+17035550122",
    request_uri: SipUri | None = None,
    to: SipUri | None = None,
    ring_timeout: float | None = None,
    offer_text: Callable[[str], str] = lambda text: text,
) -> Client:
    link = await env.pool.acquire("127.0.0.1", env.vc.port)
    leg = MediaLeg(*CLIENT_PORTS.open_pair())
    offer = build_offer(
        local_address="127.0.0.1",
        rtp_port=leg.rtp_port,
        codecs=("PCMU", "PCMA"),
        suites=("AES_CM_128_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_80"),
        session_id=1,
        session_version=1,
        urandom=os.urandom,
    )
    host, secret = "vc.localtest", env.token if token is None else token
    uri = request_uri or chime_join_uri(join_number=join_number, host=host, join_token=secret)
    call_id = link.connection.invite(
        request_uri=uri,
        from_uri=FROM,
        to=to
        or chime_to_uri(join_number=join_number, host=host, join_token=secret, meeting_id=env.meeting_id),
        body=offer_text(str(offer)).encode(),
        now=asyncio.get_running_loop().time(),
        ring_timeout=ring_timeout,
    )
    queue = link.open_call(call_id)
    link.flush()
    return Client(env, link, queue, call_id, offer, leg)


def _has_step(env: Env, call_id: str, step: str) -> Callable[[], CallRecord | None]:
    def check() -> CallRecord | None:
        record = env.vc.call(call_id)
        return record if step in record.history else None

    return check


async def connect(env: Env, **options: Any) -> tuple[Client, CallAnswered]:
    client = await dial(env, **options)
    answered = await client.next(CallAnswered)
    client.start_media(answered)
    await env.vc.wait_for_call(client.call_id, state=CallState.CONNECTED)
    return client, answered


# -- a valid join ------------------------------------------------------------------------------------------


def test_valid_join_answers_srtp_and_exchanges_tones() -> None:
    async def scenario(env: Env) -> None:
        client, answered = await connect(env)
        answer = SessionDescription.parse(answered.body)
        assert answer.media[0].proto == "RTP/SAVP"
        assert client.params is not None
        assert (client.params.suite, client.params.codec) == ("AES_CM_128_HMAC_SHA1_80", "PCMU")
        await client.heard.wait()
        pcm = await env.vc.wait_for_recording(client.call_id, frames=50)
        assert client.recorder is not None
        heard = np.frombuffer(client.recorder.recording(), dtype="<i2")
        assert tone_level(heard, 1000.0) > 0.5
        recorded = np.frombuffer(pcm, dtype="<i2")
        assert tone_level(recorded, CLIENT_TONE_HZ) > 0.5
        assert tone_level(recorded, 1000.0) < 0.05
        record = env.vc.call(client.call_id)
        assert (record.meeting_id, record.attendee_id) == (env.meeting_id, env.attendee_id)
        assert (record.codec, record.suite, record.status) == ("PCMU", "AES_CM_128_HMAC_SHA1_80", 200)
        client.bye()
        await client.next(DialogTerminated)
        record = await env.vc.wait_for_call(client.call_id, state=CallState.ENDED)
        assert (record.ended_by, record.end_reason) == ("caller", "bye")
        assert record.final_stats is not None
        assert record.final_stats.srtp_failures == 0
        client.close()
        kinds = [(kind, detail.get("networkType")) for kind, detail in env.events]
        assert kinds == [(ATTENDEE_JOINED, "PSTN"), (ATTENDEE_LEFT, "PSTN")]
        assert env.token not in repr(record)
        assert env.token not in str(record.summary())

    _run(scenario)


def test_answer_follows_the_configured_suite_and_codec_preference() -> None:
    async def scenario(env: Env) -> None:
        client, _ = await connect(env)
        assert client.params is not None
        assert (client.params.suite, client.params.codec) == ("AES_256_CM_HMAC_SHA1_80", "PCMA")
        client.bye()
        await client.next(DialogTerminated)
        client.close()

    _run(scenario, suites=("AES_256_CM_HMAC_SHA1_80",), codecs=("PCMA",))


def test_join_number_without_plus_is_accepted() -> None:
    async def scenario(env: Env) -> None:
        client, answered = await connect(env, join_number="17035550122")
        assert answered.status == 200
        client.bye()
        await client.next(DialogTerminated)
        client.close()

    _run(scenario)


# -- refused requests --------------------------------------------------------------------------------------


async def _expect_failure(env: Env, status: int, check: str, **options: Any) -> None:
    client = await dial(env, **options)
    failed = await client.next(CallFailed)
    client.close()
    assert failed.status == status
    record = await env.vc.wait_for_call(client.call_id, state=CallState.REJECTED)
    assert (record.status, record.failed_check) == (status, check)
    assert [kind for kind, _ in env.events] == []


def test_unknown_token_is_forbidden() -> None:
    _run(lambda env: _expect_failure(env, 403, "join-token", token="not-a-token"))


def test_revoked_token_is_forbidden() -> None:
    async def scenario(env: Env) -> None:
        attendee_id, token = env.new_attendee("revoked")
        env.meetings.store.delete_attendee(env.meeting_id, attendee_id)
        env.events.clear()
        await _expect_failure(env, 403, "join-token", token=token)

    _run(scenario)


def test_wrong_join_number_is_not_found() -> None:
    _run(lambda env: _expect_failure(env, 404, "join-number", join_number="+15555550100"))


def test_meeting_id_of_another_meeting_is_not_found() -> None:
    async def scenario(env: Env) -> None:
        other = "11111111-2222-3333-4444-555555555555"
        to = chime_to_uri(
            join_number="+17035550122", host="vc.localtest", join_token=env.token, meeting_id=other
        )
        await _expect_failure(env, 404, "meeting-id", to=to)

    _run(scenario)


def test_missing_transport_tls_is_a_bad_request() -> None:
    async def scenario(env: Env) -> None:
        uri = chime_join_uri(join_number="+17035550122", host="vc.localtest", join_token=env.token)
        await _expect_failure(env, 400, "transport", request_uri=uri.without_params("transport"))

    _run(scenario)


def test_plain_rtp_offer_is_not_acceptable() -> None:
    def plain(text: str) -> str:
        lines = [line for line in text.split("\r\n") if not line.startswith("a=crypto")]
        return "\r\n".join(lines).replace("RTP/SAVP", "RTP/AVP")

    _run(lambda env: _expect_failure(env, 488, "sdp:no-srtp", offer_text=plain))


def test_non_e164_from_is_forbidden() -> None:
    """The worker's SIP core refuses to send such an INVITE, so this one is written by hand."""

    async def scenario(env: Env) -> None:
        context = client_context(ca_file=env.vc.ca_file)
        reader, writer = await asyncio.open_connection("127.0.0.1", env.vc.port, ssl=context)
        uri = chime_join_uri(join_number="+17035550122", host="vc.localtest", join_token=env.token)
        head = (
            f"INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5099;branch=z9hG4bK-raw-1\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=raw1\r\n"
            f"To: <sip:+17035550122@vc.localtest>\r\nCall-ID: raw-call-1\r\nCSeq: 1 INVITE\r\n"
            "Contact: <sip:alice@127.0.0.1:5099;transport=tls>\r\nContent-Length: 0\r\n\r\n"
        )
        writer.write(head.encode())
        framer = StreamFramer()
        final: SipResponse | None = None
        async with asyncio.timeout(WAIT_S):
            while final is None:
                framer.feed(await reader.read(4096))
                while (item := framer.next_item()) is not None:
                    if isinstance(item, SipResponse) and item.status >= 200:
                        final = item
        writer.close()
        assert final.status == 403
        record = await env.vc.wait_for_call("raw-call-1", state=CallState.REJECTED)
        assert record.failed_check == "from"

    _run(scenario)


def test_checks_in_isolation() -> None:
    def to(params: str = "") -> NameAddr:
        return NameAddr.parse(f"<sip:+17035550122@vc.localtest{params}>")

    caller = NameAddr.parse("<sip:+12065550100@127.0.0.1>")
    ok = "sip:17035550122@vc.localtest;transport=TLS;X-chime-join-token=abc"
    accepted = check_join_request(ok, caller, to(), join_numbers=("+17035550122",), token_validator=None)
    assert accepted == JoinAccepted(meeting_id=None, attendee_id=None, caller="+12065550100")
    cases = {
        "tel:+17035550122": (400, "request-uri"),
        "sip:+17035550122@vc.localtest;transport=tcp;X-chime-join-token=abc": (400, "transport"),
        "sip:+17035550122@vc.localtest;transport=tls": (403, "join-token"),
        "sip:+1703555012@vc.localtest;transport=tls;X-chime-join-token=abc": (404, "join-number"),
    }
    for uri, (status, check) in cases.items():
        result = check_join_request(uri, caller, to(), join_numbers=("+17035550122",), token_validator=None)
        assert isinstance(result, JoinRejected)
        assert (result.status, result.check) == (status, check)
        assert "abc" not in result.reason


# -- the meeting goes away -----------------------------------------------------------------------------------


def test_attendee_deleted_sends_bye() -> None:
    async def scenario(env: Env) -> None:
        client, _ = await connect(env)
        env.meetings.store.delete_attendee(env.meeting_id, env.attendee_id)
        ended = await client.next(DialogTerminated)
        assert (ended.by, ended.reason) == (Party.REMOTE, TerminationReason.BYE)
        record = await env.vc.wait_for_call(client.call_id, state=CallState.ENDED)
        assert (record.ended_by, record.end_reason) == ("emulator", "attendee-deleted")
        client.close()

    _run(scenario)


def test_meeting_ended_sends_bye() -> None:
    async def scenario(env: Env) -> None:
        client, _ = await connect(env)
        env.meetings.end_meeting(env.meeting_id)
        ended = await client.next(DialogTerminated)
        assert ended.by is Party.REMOTE
        record = await env.vc.wait_for_call(client.call_id, state=CallState.ENDED)
        assert record.end_reason == "meeting-ended"
        client.close()

    _run(scenario)


# -- faults --------------------------------------------------------------------------------------------------


def test_fault_reject_with_code() -> None:
    async def scenario(env: Env) -> None:
        env.vc.faults.reject(486)
        client = await dial(env)
        failed = await client.next(CallFailed)
        assert (failed.status, failed.category) == (486, FailureCategory.BUSY)
        client.close()
        assert env.vc.faults.pending() == 0

    _run(scenario)


def test_fault_answer_late_rings_first_then_answers() -> None:
    async def scenario(env: Env) -> None:
        env.vc.faults.answer_delay(0.2)
        client = await dial(env)
        progress = await client.next(CallProgressed)
        if progress.status == 100:
            progress = await client.next(CallProgressed)
        assert progress.status == 180  # the 180 goes out at once; the 200 only after the delay
        answered = await client.next(CallAnswered)
        assert answered.status == 200
        client.close()

    _run(scenario)


def test_fault_answer_too_late_for_the_ring_timeout_is_cancelled() -> None:
    async def scenario(env: Env) -> None:
        env.vc.faults.answer_delay(60)
        client = await dial(env, ring_timeout=0.3)
        failed = await client.next(CallFailed)
        assert failed.category is FailureCategory.NO_ANSWER
        record = await env.vc.wait_for_call(client.call_id, state=CallState.CANCELLED)
        assert record.ended_by == "caller"
        client.close()

    _run(scenario)


def test_fault_drop_after_sends_bye() -> None:
    async def scenario(env: Env) -> None:
        env.vc.faults.drop_after(0.2)
        client, _ = await connect(env)
        ended = await client.next(DialogTerminated)
        assert (ended.by, ended.reason) == (Party.REMOTE, TerminationReason.BYE)
        record = await env.vc.wait_for_call(client.call_id, state=CallState.ENDED)
        assert (record.ended_by, record.end_reason) == ("emulator", "drop-after")
        client.close()

    _run(scenario)


def test_fault_hold_then_resume_by_reinvite() -> None:
    async def scenario(env: Env) -> None:
        env.vc.faults.hold_resume(0.2)
        client, _ = await connect(env)
        previous = SessionDescription.parse(str(client.offer))
        for expected in ("recvonly", "sendrecv"):
            offer = await client.next(OfferReceived)
            assert offer.method == "INVITE"
            assert client.params is not None
            answer, params = answer_offer(
                offer.body.decode(),
                local_address="127.0.0.1",
                rtp_port=client.leg.rtp_port,
                codecs=("PCMU", "PCMA"),
                suites=("AES_CM_128_HMAC_SHA1_80",),
                urandom=os.urandom,
                previous=previous,
                current=client.params,
            )
            assert params.direction.value == expected
            assert params.local_key_salt == client.params.local_key_salt  # RFC 4568 §7.1.4: keys kept
            client.link.connection.answer_offer(
                client.call_id, offer.request_id, answer.encode(), now=client.now()
            )
            client.link.flush()
            previous = SessionDescription.parse(answer)
            client.leg.update(params)
            client.params = params
        record = await env.vc.wait_until(_has_step(env, client.call_id, "answered:sendrecv"))
        assert [
            h for h in record.history if h in ("hold", "answered:sendonly", "resume", "answered:sendrecv")
        ] == [
            "hold",
            "answered:sendonly",
            "resume",
            "answered:sendrecv",
        ]
        client.bye()
        await client.next(DialogTerminated)
        client.close()

    _run(scenario)


def test_fault_update_refresh() -> None:
    async def scenario(env: Env) -> None:
        env.vc.faults.update_refresh(0.1)
        client, _ = await connect(env)
        refreshed = await client.next(SessionRefreshed)
        assert refreshed.by is Party.REMOTE
        record = await env.vc.wait_until(_has_step(env, client.call_id, "session-refreshed:local"))
        assert "update-refresh" in record.history
        client.bye()
        await client.next(DialogTerminated)
        client.close()

    _run(scenario)


def test_fault_answer_without_crypto_is_refused_by_the_client() -> None:
    async def scenario(env: Env) -> None:
        env.vc.faults.answer_without_crypto()
        client = await dial(env)
        answered = await client.next(CallAnswered)
        answer = SessionDescription.parse(answered.body)
        assert answer.media[0].proto == "RTP/AVP"
        assert not answer.media[0].attributes_named("crypto")
        with pytest.raises(NegotiationFailed):
            process_answer(client.offer, answered.body.decode())
        client.bye()
        await client.next(DialogTerminated)
        record = await env.vc.wait_for_call(client.call_id, state=CallState.ENDED)
        assert record.packets_sent == 0
        assert record.ended_by == "caller"
        client.close()

    _run(scenario)


def test_fault_stop_media_goes_silent_on_the_wire() -> None:
    async def scenario(env: Env) -> None:
        env.vc.add_fault(CallFault(stop_media_after_s=0.2))
        client, _ = await connect(env)
        await client.inactive.wait()
        assert "media-stopped" in env.vc.call(client.call_id).history
        client.bye()
        await client.next(DialogTerminated)
        client.close()

    _run(scenario)


def test_faults_validate_their_arguments() -> None:
    with pytest.raises(ValueError, match="3xx-6xx"):
        CallFault(reject=200)
    with pytest.raises(ValueError, match="negative"):
        CallFault(drop_after_s=-1)


def test_untrusted_client_cannot_connect() -> None:
    async def scenario(env: Env) -> None:
        context = ssl.create_default_context()
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection("127.0.0.1", env.vc.port, ssl=context)

    _run(scenario)


# -- other ways to run it ------------------------------------------------------------------------------------


def test_thread_hosted_variant_serves_a_caller_on_another_loop() -> None:
    meetings = MeetingsEmulator()
    meeting = meetings.store.create_meeting(
        {"ClientRequestToken": "vc-thread", "MediaRegion": "us-east-1", "ExternalMeetingId": "vc-thread"}
    )["Meeting"]["MeetingId"]
    attendee = meetings.store.create_attendee(meeting, {"ExternalUserId": "thread-user"})["Attendee"]
    token = attendee["JoinToken"]
    with VoiceConnectorThread(meetings=meetings) as vc:
        vc.faults.reject(503)

        async def caller() -> int:
            pool = SipConnectionPool(ssl_context=client_context(ca_file=vc.ca_file), keepalive_s=None)
            link = await pool.acquire("127.0.0.1", vc.port)
            uri = chime_join_uri(join_number="+17035550122", host="vc.localtest", join_token=token)
            call_id = link.connection.invite(
                request_uri=uri, from_uri=FROM, to=uri, body=b"", now=asyncio.get_running_loop().time()
            )
            queue = link.open_call(call_id)
            link.flush()
            async with asyncio.timeout(WAIT_S):
                while not isinstance(event := await queue.get(), CallFailed):
                    pass
            await pool.close()
            return event.status

        assert asyncio.run(caller()) == 503
        summary = vc.wait_for_call(state=CallState.REJECTED)
        assert (summary["status"], summary["failed_check"]) == (503, "fault")
        assert token not in str(vc.calls())


def test_standalone_command_prints_uri_and_ca_file_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "voice-connector", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        uri = process.stdout.readline().strip()
        ca_file = Path(process.stdout.readline().strip())
        parsed = SipUri.parse(uri)
        assert (parsed.user, parsed.host, parsed.param("transport")) == ("+17035550122", "127.0.0.1", "tls")
        assert ca_file.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WAIT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert not ca_file.exists()  # the temporary PKI directory is removed at exit
