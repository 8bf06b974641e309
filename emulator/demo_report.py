"""The demo's summary per call, joined from the three places that know about a call, and its output folder.

- the call registry (DynamoDB): state, end and hangup reasons, the job's enqueue time, final media figures;
- the Voice Connector emulator: the SIP Call-ID's INVITE, 200 OK, first media and end times, codec, suite,
  who hung up, and the audio it heard;
- the worker: its end-of-call log line (media figures, how the call ended), or its last ``/calls`` snapshot.

Writes ``recordings/<call>.wav`` (what the connector heard), ``timeline.png`` and ``summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import numpy as np

from chalicelib.contract import DialRequest
from emulator.demo_sandbox import WORKER_TONE_HZ, Sandbox
from emulator.demo_scenario import MeetingPlan
from emulator.meetings_events import ATTENDEE_ADDED, MEETING_STARTED
from emulator.timeline import CallTimeline, render_timeline
from media_worker.audio import encode_wav
from media_worker.audio.goertzel import tone_level

__all__ = ["MILESTONES", "call_summaries", "render_summary", "write_outputs", "write_summary"]

MILESTONES: Final = ("event", "attendee", "job", "invite", "answered", "first_media", "ended")
_NAMES: Final = {
    "event": "event",
    "attendee": "attendee",
    "job": "job",
    "invite": "INVITE",
    "answered": "200 OK",
    "first_media": "first media",
    "ended": "end",
}
_WINDOW_SAMPLES: Final = 800  # 100 ms at 8 kHz
_MEDIA_KEYS: Final = ("packets_sent", "packets_received", "packets_lost", "loss_pct", "jitter_ms", "mos")


def _finished_lines(sb: Sandbox) -> dict[str, dict[str, Any]]:
    """The worker's "call finished" log records by call id."""
    return {str(r.get("call_id")): r for r in sb.worker.log_records() if r.get("message") == "call finished"}


def _milestones(sb: Sandbox, plan: MeetingPlan, attendee_id: str | None, job: str | None) -> dict[str, float]:
    times: dict[str, float] = {}
    started = sb.forwarder.find(MEETING_STARTED, meetingId=plan.meeting_id)
    if started:
        times["event"] = started[0].at
    if attendee_id is not None:
        added = sb.forwarder.find(ATTENDEE_ADDED, meetingId=plan.meeting_id, attendeeId=attendee_id)
        if added:
            times["attendee"] = added[0].at
    if job is not None:
        times["job"] = DialRequest.from_json(job).requested_at.timestamp()
    if plan.sip_call_id is not None:
        times.update(sb.milestones.of(plan.sip_call_id))
    return {name: round(times[name] - sb.started, 3) for name in MILESTONES if name in times}


def _how_it_ended(hangup_reason: str | None, leg_reason: str | None, vc: dict[str, Any] | None) -> str:
    reason = hangup_reason or leg_reason or "still running"
    if hangup_reason and leg_reason and leg_reason != hangup_reason:
        reason = f"{hangup_reason} (the leg: {leg_reason})"
    if vc is None or vc.get("ended_by") is None:
        return reason
    by = "the connector" if vc["ended_by"] == "emulator" else "the participant"
    return f"{reason}; BYE from {by}" + (f" ({vc['end_reason']})" if vc["ended_by"] == "emulator" else "")


def call_summaries(sb: Sandbox, plans: list[MeetingPlan]) -> list[dict[str, Any]]:
    """One JSON-able, secret-free entry per meeting (a meeting without a call says so)."""
    finished = _finished_lines(sb)
    views = sb.monitor.views()
    summaries = []
    for plan in plans:
        entry: dict[str, Any] = {"label": plan.label, "external_meeting_id": plan.external_id}
        entry["scenario"] = plan.outcome
        record = None if plan.call_id is None else sb.registry.get(plan.call_id)
        if record is None:
            entry["call"] = None
            summaries.append(entry)
            continue
        vc = sb.vc_summary(record.sip_call_id or "") if record.sip_call_id else None
        line = finished.get(record.call_id, {})
        view = views.get(record.call_id)
        live = (view.worker or {}).get("media") if view is not None else None
        media = line.get("media") or record.media_stats or live or {}
        entry["call"] = {
            "call_id": record.call_id,
            "target": record.target_name,
            "state": record.state,
            "desired": record.desired,
            "attempts": record.attempts,
            "end_reason": record.end_reason or line.get("end_reason"),
            "hangup_reason": record.hangup_reason,
            "how_it_ended": _how_it_ended(
                record.hangup_reason, record.end_reason or line.get("end_reason"), vc
            ),
            "timeline_s": _milestones(sb, plan, record.attendee_id, record.job),
            "codec": vc and vc["codec"],
            "srtp_suite": vc and vc["suite"],
            "worker_media": {key: media.get(key) for key in (*_MEDIA_KEYS, "srtp_failures")},
            "connector": None
            if vc is None
            else {
                "packets_sent": vc["packets_sent"],
                "packets_received": vc["packets_received"],
                "ended_by": vc["ended_by"],
                "end_reason": vc["end_reason"],
            },
        }
        summaries.append(entry)
    return summaries


def _levels(pcm: bytes) -> list[float]:
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    return [
        round(tone_level(samples[i : i + _WINDOW_SAMPLES], WORKER_TONE_HZ), 3)
        for i in range(0, len(samples) - _WINDOW_SAMPLES + 1, _WINDOW_SAMPLES)
    ]


def write_outputs(sb: Sandbox, calls: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """WAV per call (what the connector heard) and timeline.png; returns the files written."""
    recordings = out_dir / "recordings"
    recordings.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    rows: list[CallTimeline] = []
    for entry in calls:
        call = entry["call"]
        if call is None:
            continue
        record = sb.registry.get(call["call_id"])
        pcm = sb.vc_recording(record.sip_call_id) if record and record.sip_call_id else b""
        path = recordings / f"{entry['label']}-heard-by-connector.wav"
        path.write_bytes(encode_wav(pcm))
        written.append(path)
        call["recording"] = str(path.relative_to(out_dir))
        call["tone_level_heard"] = round(max(_levels(pcm) or [0.0]), 3)
        milestones = call["timeline_s"]
        rows.append(
            CallTimeline(
                label=f"{entry['label']}/{call['target']}",
                milestones=milestones,
                outcome=call["how_it_ended"].split(";")[0].split(" (")[0],
                levels=_levels(pcm),
                levels_start=milestones.get("first_media", 0.0),
            )
        )
    title = f"chime-dialout demo, {len(rows)} calls"
    written.append(render_timeline(rows, out_dir / "timeline.png", title=title))
    return written


def write_summary(summary: dict[str, Any], out_dir: Path) -> Path:
    path = out_dir / "summary.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _timeline_text(times: dict[str, float]) -> str:
    start = times.get("event")
    parts = []
    for name in MILESTONES:
        if name not in times:
            continue
        if start is None or name == "event":
            parts.append(f"{_NAMES[name]} {times[name]:.2f}s")
        else:
            parts.append(f"{_NAMES[name]} +{(times[name] - start) * 1000:.0f}ms")
    return " -> ".join(parts)


def render_summary(calls: list[dict[str, Any]]) -> list[str]:
    """The per-call summary as text lines."""
    lines = ["Summary per call (event at seconds since start, then milliseconds after the event):"]
    for entry in calls:
        call = entry["call"]
        if call is None:
            lines.append(f"  {entry['label']}: {entry['scenario']}")
            continue
        media = call["worker_media"]
        lines += [
            f"  {entry['label']}/{call['target']}: {call['how_it_ended']}",
            f"     {_timeline_text(call['timeline_s'])}",
            f"     {call['codec']}, {call['srtp_suite']}; worker sent {media['packets_sent']}, received "
            f"{media['packets_received']}, lost {media['packets_lost']} ({media['loss_pct']} %), jitter "
            f"{media['jitter_ms']} ms, MOS {media['mos']}",
        ]
    return lines
