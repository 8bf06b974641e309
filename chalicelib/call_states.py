"""Call states, the transition table and the call record type (items ``pk = "CALL#<call_id>"``).

``call_id = "<meeting_id>:<target name>"``: one call per (meeting, dial target), stable across re-dials.

Transitions (who makes them)::

    (none)     -> queued      control plane claims the call before CreateAttendee
    queued     -> dialing     a worker takes the job (lease starts)
    dialing    -> ringing     provisional response
    dialing|ringing -> connected   2xx to INVITE
    dialing|ringing|connected -> ending   BYE sent / received
    any active -> ended       the worker finished the call (or the sweeper: nobody holds it, desired=ended)
    any active -> failed      worker gave up, meeting gone, attendee limit, attempts exhausted
    queued|dialing|ringing|connected -> queued   sweeper re-queue (lease expired, or stuck), attempts+1
    ringing|connected -> dialing   the same worker re-dials a dropped leg, attempts+1

``desired`` (connected | ended) is what the control plane wants; the worker reads it on every heartbeat.
Every write carries a ``ConditionExpression`` on the current state (and on the worker id for worker-side
transitions, or on ``version`` for the sweeper's optimistic updates), so duplicate, reordered and concurrent
events or messages cannot produce a second attendee, a second job or a backwards transition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from chalicelib.contract import DialRequest, DialTarget
from chalicelib.dynamo import CALL_PREFIX, from_item, to_attr
from chalicelib.errors import ControlPlaneError

__all__ = [
    "ACTIVE_STATES",
    "MEETING_INDEX",
    "STATE_INDEX",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "WORKER_STATES",
    "CallRecord",
    "CallState",
    "ClaimResult",
    "Desired",
    "TransitionRejected",
    "call_id_for",
    "new_call_item",
    "states_condition",
]

CallState = Literal["queued", "dialing", "ringing", "connected", "ending", "ended", "failed"]
Desired = Literal["connected", "ended"]

MEETING_INDEX: Final = "meeting-index"
STATE_INDEX: Final = "state-index"

TERMINAL_STATES: Final[frozenset[CallState]] = frozenset({"ended", "failed"})
ACTIVE_STATES: Final[frozenset[CallState]] = frozenset(
    {"queued", "dialing", "ringing", "connected", "ending"}
)
WORKER_STATES: Final[frozenset[CallState]] = frozenset({"dialing", "ringing", "connected", "ending"})

#: target state -> states it may be entered from. "queued" is also entered from nothing (the claim).
TRANSITIONS: Final[Mapping[CallState, frozenset[CallState]]] = {
    "queued": frozenset({"queued", "dialing", "ringing", "connected"}),  # sweeper re-queue
    "dialing": frozenset({"queued", "dialing", "ringing", "connected"}),  # worker claim / same-worker re-dial
    "ringing": frozenset({"dialing"}),
    "connected": frozenset({"dialing", "ringing"}),
    "ending": frozenset({"dialing", "ringing", "connected"}),
    "ended": ACTIVE_STATES,
    "failed": ACTIVE_STATES,
}


def call_id_for(meeting_id: str, target_name: str) -> str:
    return f"{meeting_id}:{target_name}"


def new_call_item(
    meeting_id: str,
    target: DialTarget,
    *,
    claim_id: str,
    now_iso: str,
    grace_s: float,
    event_id: str,
    media_region: str,
    external_meeting_id: str | None,
) -> dict[str, Any]:
    """The attributes of a freshly claimed call: queued, wanted, first attempt, no attendee yet."""
    call_id = call_id_for(meeting_id, target.name)
    item: dict[str, Any] = {
        "pk": CALL_PREFIX + call_id,
        "call_id": call_id,
        "meeting_id": meeting_id,
        "target_name": target.name,
        "target": target.model_dump_json(),
        "media_region": media_region,
        "state": "queued",
        "desired": "connected",
        "attempts": 1,
        "version": 1,
        "grace_s": grace_s,
        "created_at": now_iso,
        "updated_at": now_iso,
        "event_id": event_id,
        "claim_id": claim_id,
    }
    if external_meeting_id is not None:
        item["external_meeting_id"] = external_meeting_id
    return item


class TransitionRejected(ControlPlaneError):
    """A conditional write was refused: the call is not in a state (or not held by the worker) that allows it.

    For a worker this means: stop working on the call (another worker holds it, or it is already over).
    """

    def __init__(self, call_id: str, to_state: str, current: CallRecord | None) -> None:
        now = "missing" if current is None else f"{current.state} held by {current.worker_id or 'nobody'}"
        super().__init__(f"call {call_id}: transition to {to_state} refused (record is {now})")
        self.call_id = call_id
        self.to_state = to_state
        self.current = current


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A call item as read from the table."""

    call_id: str
    meeting_id: str
    target_name: str
    state: CallState
    desired: Desired
    attempts: int
    version: int
    grace_s: float
    created_at: str
    updated_at: str
    event_id: str
    claim_id: str
    media_region: str
    target: str  # DialTarget JSON, kept so the sweeper can finish a claim that crashed before its attendee
    external_meeting_id: str | None = field(default=None, repr=False)  # sensitive in the Chime API model
    attendee_id: str | None = None
    external_user_id: str | None = None
    job: str | None = field(default=None, repr=False)  # holds the join token
    worker_id: str | None = None
    lease_expires_at: float | None = None
    sip_call_id: str | None = None
    sip_status: int | None = None
    end_reason: str | None = None
    hangup_reason: str | None = None
    connected_at: str | None = None
    ended_at: str | None = None
    attendee_status: str | None = None
    attendee_event_ms: int | None = None
    media_stats: Mapping[str, Any] | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> CallRecord:
        values = from_item(item)
        values.pop("pk", None)
        values.pop("expires_at", None)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})

    @property
    def created_epoch(self) -> float:
        return datetime.fromisoformat(self.created_at).timestamp()

    @property
    def updated_epoch(self) -> float:
        return datetime.fromisoformat(self.updated_at).timestamp()

    def dial_target(self) -> DialTarget:
        return DialTarget.model_validate_json(self.target)

    def dial_request(self) -> DialRequest | None:
        """The stored job (with its join token), or None before the attendee exists."""
        return None if self.job is None else DialRequest.from_json(self.job)


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """``claim_id`` is set when this caller won the claim; otherwise ``refusal`` says why not."""

    claim_id: str | None
    refusal: Literal["exists", "meeting_ended"] | None = None


def states_condition(name: str, states: frozenset[CallState]) -> tuple[str, dict[str, Any]]:
    keys = [f":{name}{i}" for i in range(len(states))]
    values = {k: to_attr(s) for k, s in zip(keys, sorted(states), strict=True)}
    return f"#state IN ({', '.join(keys)})", values
