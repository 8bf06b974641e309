"""The scripted scenario: what happens, in order, and what must hold after each step.

Three meetings start (one matches no dial-plan rule) and humans join; each matching meeting gets its SIP
participant and audio flows both ways; a duplicate MeetingStarted changes nothing; one meeting is deleted
(MeetingEnded, BYE); in another the humans leave and the participant hangs up after the grace period;
finally one more call is connected and the worker is sent SIGTERM mid-call: it says BYE and exits 0.

Every wait is on a condition with a deadline; nothing sleeps to let things happen.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import numpy as np

from chalicelib.call_registry import CallRecord
from chalicelib.call_states import call_id_for
from chalicelib.dial_plan import is_our_attendee
from emulator.demo_sandbox import HUMANS_GONE_GRACE_S, SWEEP_EVERY_S, WORKER_TONE_HZ, Sandbox
from emulator.local_aws import LOCAL_REGION
from emulator.meetings_events import MEETING_STARTED
from media_worker.audio.goertzel import tone_level

__all__ = ["Expectations", "MeetingPlan", "run_scenario", "scenario_meetings", "wait_for"]

_T = TypeVar("_T")
_TARGET: Final = "vc1"
_FRAME_BYTES: Final = 320
_SETUP_TIMEOUT_S: Final = 25.0
_END_TIMEOUT_S: Final = 15.0


@dataclass
class Expectations:
    """Named checks, each shown as [ok] or [FAILED] when it is made."""

    say: Callable[[str], None]
    items: list[dict[str, Any]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.items.append({"name": name, "ok": bool(ok), "detail": detail})
        self.say(f"   [{'ok' if ok else 'FAILED'}] {detail}")
        return bool(ok)

    @property
    def all_ok(self) -> bool:
        return bool(self.items) and all(item["ok"] for item in self.items)


@dataclass
class MeetingPlan:
    """One meeting of the scenario and what the demo learnt about it."""

    label: str
    external_id: str
    humans: tuple[str, ...]
    matched: bool
    meeting_id: str = ""
    human_ids: list[str] = field(default_factory=list)
    call_id: str | None = None
    sip_call_id: str | None = None
    outcome: str = ""


def wait_for(condition: Callable[[], _T | None], timeout_s: float, period_s: float = 0.1) -> _T | None:
    """The first truthy ``condition()`` before the deadline, else None (polls state in other processes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            return None
        time.sleep(period_s)


def _start_meeting(sb: Sandbox, plan: MeetingPlan) -> None:
    created = sb.chime.create_meeting(
        ClientRequestToken=uuid.uuid4().hex, MediaRegion=LOCAL_REGION, ExternalMeetingId=plan.external_id
    )
    plan.meeting_id = created["Meeting"]["MeetingId"]
    sb.monitor.watch_meeting(plan.meeting_id, plan.label)
    if plan.matched:
        plan.call_id = call_id_for(plan.meeting_id, _TARGET)
    for name in plan.humans:
        attendee = sb.chime.create_attendee(MeetingId=plan.meeting_id, ExternalUserId=name)["Attendee"]
        plan.human_ids.append(attendee["AttendeeId"])
        sb.meetings.join_attendee(plan.meeting_id, attendee["AttendeeId"])


def _record(sb: Sandbox, plan: MeetingPlan) -> CallRecord | None:
    return None if plan.call_id is None else sb.registry.get(plan.call_id)


def _connected(sb: Sandbox, plan: MeetingPlan, frames: int) -> CallRecord | None:
    """The call record once connected, our attendee joined and the connector heard ``frames`` frames."""
    record = _record(sb, plan)
    if record is None or record.state != "connected" or record.sip_call_id is None:
        return None
    if record.attendee_status != "joined":
        return None
    vc = sb.vc_summary(record.sip_call_id)
    if vc is None or vc["state"] != "connected":
        return None
    if len(sb.vc_recording(record.sip_call_id)) < frames * _FRAME_BYTES:
        return None
    plan.sip_call_id = record.sip_call_id
    return record


def _heard(sb: Sandbox, sip_call_id: str, frames: int) -> bytes | None:
    pcm = sb.vc_recording(sip_call_id)
    return pcm if len(pcm) >= frames * _FRAME_BYTES else None


def _worker_media(sb: Sandbox, call_id: str, packets: int) -> dict[str, Any] | None:
    """The worker's live media figures for the call once it has received ``packets`` packets."""
    for snapshot in sb.worker.calls():
        media = snapshot.get("media") or {}
        if snapshot.get("call_id") == call_id and media.get("packets_received", 0) >= packets:
            return dict(media)
    return None


def _our_attendees(sb: Sandbox, meeting_id: str) -> int:
    attendees = sb.chime.list_attendees(MeetingId=meeting_id)["Attendees"]
    return sum(1 for a in attendees if is_our_attendee(a["ExternalUserId"]))


def step_meetings_start(sb: Sandbox, ex: Expectations, plans: list[MeetingPlan]) -> None:
    say = sb.console.say
    say("2. Three meetings start (boto3 CreateMeeting); humans join (CreateAttendee + their clients connect)")
    for plan in plans:
        _start_meeting(sb, plan)
        rule = "matches a dial-plan rule" if plan.matched else "matches NO dial-plan rule"
        say(
            f"   {plan.label}: ExternalMeetingId {plan.external_id!r} {rule}; humans {', '.join(plan.humans)}"
        )
    say("   MeetingStarted -> EventBridge rule -> SQS -> on_meeting_started -> CreateAttendee -> dial job")
    say("   -> worker: INVITE over TLS to the connector -> 200 OK -> SRTP both ways")
    handled = sb.invoker.wait_for_count("on_meeting_started", len(plans), _SETUP_TIMEOUT_S)
    for plan in plans:
        if not plan.matched:
            records = sb.registry.calls_for_meeting(plan.meeting_id)
            ours = _our_attendees(sb, plan.meeting_id)
            ex.check(
                "unmatched_meeting_skipped",
                handled and not records and ours == 0,
                f"{plan.label}: MeetingStarted handled; no call, no attendee of ours (no rule matches)",
            )
            plan.outcome = "no dial-plan rule: no call"
            continue
        record = wait_for(functools.partial(_connected, sb, plan, 25), _SETUP_TIMEOUT_S)
        ex.check(
            "participant_joined",
            record is not None and _our_attendees(sb, plan.meeting_id) == 1,
            f"{plan.label}: one SIP participant connected; Chime reports it joined (PSTN)",
        )


def step_duplicate(sb: Sandbox, ex: Expectations, plan: MeetingPlan) -> None:
    sb.console.say("3. A duplicate MeetingStarted for the first meeting (EventBridge delivers at least once)")
    original = sb.forwarder.find(MEETING_STARTED, meetingId=plan.meeting_id)
    before = (
        sb.meetings.request_count("CreateAttendee"),
        len(sb.vc.calls()),
        len(sb.registry.calls_for_meeting(plan.meeting_id)),
    )
    invoked = sb.invoker.count("on_meeting_started")
    sb.forwarder.put(MEETING_STARTED, original[0].detail)
    handled = sb.invoker.wait_for_count("on_meeting_started", invoked + 1, _END_TIMEOUT_S)
    after = (
        sb.meetings.request_count("CreateAttendee"),
        len(sb.vc.calls()),
        len(sb.registry.calls_for_meeting(plan.meeting_id)),
    )
    record = _record(sb, plan)
    ex.check(
        "duplicate_changes_nothing",
        handled
        and before == after
        and sb.dial_queue_depth() == 0
        and record is not None
        and record.state == "connected"
        and record.attempts == 1,
        f"handled; CreateAttendee {before[0]}->{after[0]}, INVITEs {before[1]}->{after[1]}, "
        f"calls for the meeting {before[2]}->{after[2]}; dial queue empty; the call stays connected",
    )


def step_audio(sb: Sandbox, ex: Expectations, plans: list[MeetingPlan]) -> None:
    sb.console.say(
        f"4. Audio both ways: the connector plays 1 kHz, the participant plays {WORKER_TONE_HZ:.0f} Hz"
    )
    for plan in plans:
        if plan.sip_call_id is None:
            continue
        sip = plan.sip_call_id
        pcm = wait_for(functools.partial(_heard, sb, sip, 100), 10.0)
        samples = np.frombuffer((pcm or b"")[-50 * _FRAME_BYTES :], dtype="<i2")
        level = tone_level(samples, WORKER_TONE_HZ) if len(samples) else 0.0
        worker_media = wait_for(functools.partial(_worker_media, sb, plan.call_id or "", 100), 10.0)
        received = 0 if worker_media is None else worker_media["packets_received"]
        failures = None if worker_media is None else worker_media["srtp_failures"]
        ex.check(
            "audio_both_ways",
            level > 0.5 and received >= 100 and failures == 0,
            f"{plan.label}: connector hears the {WORKER_TONE_HZ:.0f} Hz tone (level {level:.2f}); worker "
            f"received and decrypted {received} packets ({failures} SRTP failures)",
        )


def step_meeting_deleted(sb: Sandbox, ex: Expectations, plan: MeetingPlan) -> None:
    sb.console.say(f"5. DeleteMeeting {plan.label} -> chime:MeetingEnded -> BYE, attendee deleted")
    sb.chime.delete_meeting(MeetingId=plan.meeting_id)
    record = wait_for(
        lambda: r if (r := _record(sb, plan)) is not None and r.state in ("ended", "failed") else None,
        _END_TIMEOUT_S,
    )
    sb.invoker.wait_for_count("on_meeting_ended", 1, _END_TIMEOUT_S)
    vc = sb.vc_summary(plan.sip_call_id or "")
    invites = [c for c in sb.vc.calls() if c["meeting_id"] == plan.meeting_id]
    ex.check(
        "meeting_ended_bye",
        record is not None
        and record.state == "ended"
        and record.desired == "ended"
        and record.hangup_reason == "meeting_ended"
        and vc is not None
        and vc["state"] == "ended"
        and len(invites) == 1,
        f"the call is ended (desired ended: meeting_ended); BYE ({vc and vc['ended_by']}: "
        f"{vc and vc['end_reason']}); no re-dial ({len(invites)} INVITE)",
    )
    deletes = sb.meetings.request_count("DeleteAttendee")
    ex.check("attendee_deleted", deletes >= 1, f"on_meeting_ended sent DeleteAttendee ({deletes})")
    plan.outcome = "meeting deleted"


def step_humans_leave(sb: Sandbox, ex: Expectations, plan: MeetingPlan) -> None:
    sb.console.say(
        f"6. The humans leave {plan.label}; the participant leaves after {HUMANS_GONE_GRACE_S:.0f} s alone "
        f"(the sweeper runs every {SWEEP_EVERY_S:.0f} s here, every minute in production)"
    )
    for attendee_id in plan.human_ids:
        sb.meetings.leave_attendee(plan.meeting_id, attendee_id)
    left_at = time.time()
    record = wait_for(
        lambda: r if (r := _record(sb, plan)) is not None and r.state in ("ended", "failed") else None,
        HUMANS_GONE_GRACE_S + _END_TIMEOUT_S,
    )
    vc = sb.vc_summary(plan.sip_call_id or "")
    ended = sb.milestones.of(plan.sip_call_id or "").get("ended")
    waited = None if ended is None else ended - left_at
    ex.check(
        "humans_gone_hangup",
        record is not None
        and record.state == "ended"
        and record.end_reason == "humans_gone"
        and vc is not None
        and vc["ended_by"] == "caller"
        and waited is not None
        and waited >= HUMANS_GONE_GRACE_S,
        f"the participant said BYE {waited or 0:.1f} s after the last human left (grace "
        f"{HUMANS_GONE_GRACE_S:.0f} s); end reason {record and record.end_reason}",
    )
    plan.outcome = "humans left"


def step_drain(sb: Sandbox, ex: Expectations, plan: MeetingPlan) -> None:
    sb.console.say(f"7. Final step: {plan.label} starts and connects; then the worker gets SIGTERM mid-call")
    _start_meeting(sb, plan)
    connected = wait_for(lambda: _connected(sb, plan, 50), _SETUP_TIMEOUT_S)
    ex.check("drain_call_connected", connected is not None, f"{plan.label}: connected, audio flowing")
    sb.worker.terminate()
    status = sb.worker.wait(_END_TIMEOUT_S)
    vc = sb.vc_summary(plan.sip_call_id or "")
    record = _record(sb, plan)
    handed_back = (
        record is not None
        and record.state not in ("dialing", "ringing")
        and record.desired == "connected"
        and (record.lease_expires_at or 0.0) <= time.time()
    )
    ex.check(
        "worker_drained",
        status == 0
        and vc is not None
        and vc["state"] == "ended"
        and vc["ended_by"] == "caller"
        and handed_back,
        f"worker exit status {status}; BYE from the worker ({vc and vc['ended_by']}); the call record is "
        f"{record and record.state} with its lease given back (another worker re-dials it)",
    )
    plan.outcome = "worker drained"


def scenario_meetings() -> list[MeetingPlan]:
    """The meetings, in order: three that start together, then the one of the drain step."""
    return [
        MeetingPlan("sales-q3-review", "sales-q3-review", ("alice@example.com", "bob@example.com"), True),
        MeetingPlan("support-4711", "support-ticket-4711", ("carol@example.com",), True),
        MeetingPlan("internal-standup", "internal-standup", ("dave@example.com",), False),
        MeetingPlan("sales-late-call", "sales-late-call", ("erin@example.com",), True),
    ]


def run_scenario(sb: Sandbox, ex: Expectations, plans: list[MeetingPlan]) -> None:
    """Run every step in order on ``scenario_meetings()``."""
    sales, support, standup, late = plans
    step_meetings_start(sb, ex, [sales, support, standup])
    step_duplicate(sb, ex, sales)
    step_audio(sb, ex, [sales, support])
    step_meeting_deleted(sb, ex, sales)
    step_humans_leave(sb, ex, support)
    step_drain(sb, ex, late)
