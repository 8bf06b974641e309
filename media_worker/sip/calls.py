"""Per-call state shared by the UAC, UAS and in-dialog logic: one :class:`Call` per Call-ID."""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from media_worker.sip.auth import ChallengeResponder
from media_worker.sip.dialog import Dialog
from media_worker.sip.events import FailureCategory, TerminationReason
from media_worker.sip.exceptions import LocalProtocolError
from media_worker.sip.message import NameAddr, SipRequest
from media_worker.sip.session_timer import SessionDecision, SessionTimer
from media_worker.sip.transaction import ClientTransaction, ServerTransaction
from media_worker.sip.uri import SipUri

__all__ = [
    "Call",
    "CallRole",
    "CallState",
    "IncomingExchange",
    "InviteTemplate",
    "Outgoing",
    "Purpose",
    "Retransmit",
]


class CallRole(enum.Enum):
    UAC = "uac"  # we sent the INVITE
    UAS = "uas"  # we received it


class CallState(enum.Enum):
    CALLING = "calling"  # UAC: INVITE sent, no final response yet
    RINGING = "ringing"  # UAS: INVITE received, no final response sent yet
    WAITING_ACK = "waiting_ack"  # UAS: 2xx sent, ACK not yet received
    CONFIRMED = "confirmed"  # the dialog is up
    TERMINATING = "terminating"  # our BYE is in flight


class Purpose(enum.Enum):
    """Why we sent an in-dialog request: decides what its response means."""

    OFFER = "offer"  # reinvite()/update() with a body
    REFRESH = "refresh"  # RFC 4028 session refresh (ours or update() without a body)
    BYE = "bye"
    INFO = "info"
    OPTIONS = "options"


@dataclass(slots=True)
class Outgoing:
    """One in-dialog request we send (or have queued): kept to retry it after 401/407, 422 or 491."""

    request_id: int
    purpose: Purpose
    method: str | None  # None: a refresh that picks UPDATE or re-INVITE when it goes out
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    not_before: float = 0.0
    auth_retried: bool = False
    interval_retried: bool = False
    termination: TerminationReason = TerminationReason.BYE  # for BYE: why we end the dialog


@dataclass(slots=True)
class IncomingExchange:
    """A re-INVITE or UPDATE from the peer that we have not finished answering."""

    request_id: int
    tx: ServerTransaction
    method: str
    has_offer: bool
    session: SessionDecision | None
    answered: bool = False  # re-INVITE: 2xx sent, waiting for the ACK


@dataclass(slots=True)
class Retransmit:
    """RFC 3261 §13.3.1.4: a 2xx we resend until its ACK arrives."""

    data: bytes
    seq: int
    next_at: float
    interval: float
    give_up_at: float


@dataclass(slots=True)
class InviteTemplate:
    """What our caller asked invite() for: enough to rebuild the INVITE after 401/407 or 422."""

    request_uri: SipUri
    from_: NameAddr
    to: NameAddr
    body: bytes
    content_type: str | None
    headers: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Call:
    """One INVITE-initiated call and its dialog."""

    call_id: str
    role: CallRole
    state: CallState
    auth: ChallengeResponder
    dialog: Dialog | None = None
    local_sdp: bytes = b""
    local_sdp_type: str | None = None
    announced: bool = False  # CallAnswered/CallConfirmed emitted: DialogTerminated follows at the end
    # UAC: the initial INVITE
    template: InviteTemplate | None = None
    invite: SipRequest | None = None
    invite_tx: ClientTransaction | None = None
    session_expires: int = 0
    min_se: int = 0
    ring_deadline: float | None = None
    provisional_seen: bool = False
    cancel_reason: FailureCategory | None = None
    cancel_sent: bool = False
    interval_retries: int = 0
    ack: SipRequest | None = None  # the ACK of the last 2xx, resent when the 2xx is retransmitted
    # UAS: the initial INVITE
    server_tx: ServerTransaction | None = None
    local_tag: str = ""
    initial_session: SessionDecision | None = None
    retransmit: Retransmit | None = None
    bye_after_ack: bool = False
    # both: in-dialog
    session: SessionTimer | None = None
    outgoing: Outgoing | None = None
    incoming: IncomingExchange | None = None
    queue: deque[Outgoing] = field(default_factory=deque)
    end_reason: TerminationReason = TerminationReason.BYE

    def require_dialog(self) -> Dialog:
        if self.dialog is None:
            raise LocalProtocolError(f"call {self.call_id} has no dialog yet")
        return self.dialog

    def require_invite(self) -> SipRequest:
        if self.invite is None:
            raise LocalProtocolError(f"call {self.call_id} did not send an INVITE")
        return self.invite

    def require_template(self) -> InviteTemplate:
        if self.template is None:
            raise LocalProtocolError(f"call {self.call_id} is not an outgoing call")
        return self.template

    @property
    def idle(self) -> bool:
        """No offer/answer or refresh exchange in progress in either direction (RFC 3261 §14.1)."""
        return self.state is CallState.CONFIRMED and self.outgoing is None and self.incoming is None

    @property
    def deadline(self) -> float | None:
        candidates = [self.ring_deadline]
        if self.retransmit is not None:
            candidates.append(min(self.retransmit.next_at, self.retransmit.give_up_at))
        if self.session is not None and self.state is CallState.CONFIRMED:
            candidates.append(self.session.deadline)
        if self.queue and self.idle and self.queue[0].not_before > 0:
            candidates.append(self.queue[0].not_before)
        present = [candidate for candidate in candidates if candidate is not None]
        return min(present) if present else None
