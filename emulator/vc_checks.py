"""What the Voice Connector stand-in checks on a meeting-join INVITE before it looks at the SDP.

The checks run in this order and the first failure decides the response (the real service's codes are not
documented; these are the RFC 3261 codes that name each problem most precisely):

======================================  ======  ===============================================
problem                                 status  why this code
======================================  ======  ===============================================
Request-URI does not parse              400     §21.4.1 Bad Request
scheme is not sip/sips                  416     §21.4.14 Unsupported URI Scheme
no ``transport=tls`` parameter          400     §21.4.1: the request is malformed *for this
                                                service* (signalling must be TLS); 416 is
                                                about the scheme and does not fit
user part is not the join number        404     §21.4.4 Not Found: no such number here
no ``X-chime-join-token``               403     §21.4.3 Forbidden: will not serve it
token unknown, revoked or expired       403     §21.4.3 (the same code: do not leak which)
To's ``X-chime-meeting-id`` is another  404     §21.4.4: that meeting is not found for it
meeting than the token's
From user is not an E.164 number        403     §21.4.3: the service refuses non-E.164 callers
                                                (484 is about an incomplete Request-URI)
======================================  ======  ===============================================

The join number matches with or without its leading '+'. Nothing here ever puts the join token in a reason
phrase, a repr or an exception message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from media_worker.sip import NameAddr, ParseError, SipUri

__all__ = ["E164", "JoinAccepted", "JoinRejected", "TokenValidator", "check_join_request", "is_e164"]

E164: Final = re.compile(r"\+?[1-9][0-9]{1,14}")  # ITU-T E.164: at most 15 digits, no leading zero
_TOKEN_PARAM: Final = "X-chime-join-token"  # noqa: S105 -- a parameter name, not a credential
_MEETING_PARAM: Final = "X-chime-meeting-id"

TokenValidator = Callable[[str], "tuple[str, str] | None"]
"""``validator(token) -> (meeting_id, attendee_id)`` for a live token, else ``None``."""


def is_e164(number: str | None) -> bool:
    """True for an E.164 number with or without its leading '+'."""
    return number is not None and E164.fullmatch(number) is not None


@dataclass(frozen=True, slots=True)
class JoinAccepted:
    """The INVITE may join: the meeting and attendee its token belongs to, and the caller's number."""

    meeting_id: str | None
    attendee_id: str | None
    caller: str


@dataclass(frozen=True, slots=True)
class JoinRejected:
    """The INVITE is refused with ``status``; ``check`` names the failed check, ``reason`` is token-free."""

    status: int
    reason: str
    check: str


def _normalise_number(number: str) -> str:
    return number.removeprefix("+")


def check_join_request(
    request_uri: str,
    from_: NameAddr,
    to: NameAddr,
    *,
    join_numbers: Iterable[str],
    token_validator: TokenValidator | None,
) -> JoinAccepted | JoinRejected:
    """Run the checks in the module table; ``token_validator`` None accepts any non-empty token."""
    try:
        uri = SipUri.parse(request_uri)
    except ParseError:
        return JoinRejected(400, "Malformed Request-URI", "request-uri")
    if uri.scheme not in ("sip", "sips"):
        return JoinRejected(416, "Unsupported URI Scheme", "scheme")
    transport = uri.param("transport")
    if uri.scheme == "sip" and (transport is None or transport.lower() != "tls"):
        return JoinRejected(400, "Request-URI must carry transport=tls", "transport")
    wanted = {_normalise_number(number) for number in join_numbers}
    if uri.user is None or _normalise_number(uri.user) not in wanted:
        return JoinRejected(404, "Not Found", "join-number")
    token = uri.param(_TOKEN_PARAM)
    if not token:
        return JoinRejected(403, "Missing join token", "join-token")
    meeting_id: str | None = None
    attendee_id: str | None = None
    if token_validator is not None:
        owner = token_validator(token)
        if owner is None:
            return JoinRejected(403, "Invalid join token", "join-token")
        meeting_id, attendee_id = owner
    to_meeting = to.uri.param(_MEETING_PARAM)
    if to_meeting and meeting_id is not None and to_meeting.lower() != meeting_id.lower():
        return JoinRejected(404, "Meeting not found for this join token", "meeting-id")
    caller = from_.uri.user
    if not is_e164(caller):
        return JoinRejected(403, "From must be an E.164 number", "from")
    return JoinAccepted(meeting_id=meeting_id, attendee_id=attendee_id, caller=caller or "")
