"""RFC 4028 session timers: header values, negotiation rules for both roles, and the per-dialog timer.

``refresher`` on the wire is relative to the transaction that negotiated it ("uac" = whoever sent that
request); :class:`SessionTimer` turns it into "we refresh" / "the peer refreshes" so nothing else has to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from media_worker.sip.exceptions import ParseError
from media_worker.sip.grammar import parse_params, parse_uint
from media_worker.sip.message import Headers

__all__ = [
    "DEFAULT_MIN_SE",
    "DEFAULT_SESSION_EXPIRES",
    "MINIMUM_MIN_SE",
    "Refresher",
    "SessionDecision",
    "SessionExpires",
    "SessionTimer",
    "TooSmall",
    "negotiate_as_uas",
    "parse_min_se",
    "request_headers",
    "response_headers",
    "uac_outcome",
]

DEFAULT_SESSION_EXPIRES = 1800  # what the Voice Connector's own example INVITE offers
DEFAULT_MIN_SE = 90
MINIMUM_MIN_SE = 90  # RFC 4028 §4: Min-SE MUST NOT be below 90 seconds
_MAX_DELTA = 2**32 - 1

Refresher = Literal["uac", "uas"]


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """A Session-Expires value (RFC 4028 §4): ``delta-seconds [;refresher=uac|uas]``."""

    interval: int
    refresher: Refresher | None = None

    @classmethod
    def parse(cls, text: str) -> SessionExpires:
        value, _, rest = text.strip().partition(";")
        interval = parse_uint(value.strip(), _MAX_DELTA, "Session-Expires")
        refresher: Refresher | None = None
        for name, param in parse_params(";" + rest if rest else ""):
            if name.lower() != "refresher":
                continue
            normalized = (param or "").lower()
            if normalized == "uac":
                refresher = "uac"
            elif normalized == "uas":
                refresher = "uas"
            else:
                raise ParseError(f"Session-Expires refresher must be uac or uas, not {param!r}")
        return cls(interval, refresher)

    def __str__(self) -> str:
        return f"{self.interval};refresher={self.refresher}" if self.refresher else str(self.interval)


def parse_min_se(text: str) -> int:
    """A Min-SE value (RFC 4028 §5): ``delta-seconds`` (parameters are ignored)."""
    return parse_uint(text.partition(";")[0].strip(), _MAX_DELTA, "Min-SE")


def request_headers(*, interval: int, min_se: int, refresher: Refresher | None) -> list[tuple[str, str]]:
    """Session-Expires and Min-SE for a request that starts or refreshes a session (RFC 4028 §7.1, §7.4)."""
    return [("Session-Expires", str(SessionExpires(interval, refresher))), ("Min-SE", str(min_se))]


@dataclass(frozen=True, slots=True)
class SessionDecision:
    """What a UAS puts in its 2xx: interval, refresher, and whether to Require: timer (RFC 4028 §9)."""

    interval: int
    refresher: Refresher
    require_timer: bool


@dataclass(frozen=True, slots=True)
class TooSmall:
    """The request's Session-Expires is below our minimum: answer 422 with this Min-SE (RFC 4028 §9)."""

    min_se: int


def negotiate_as_uas(
    headers: Headers, *, min_se: int, preferred: Refresher = "uac"
) -> SessionDecision | TooSmall | None:
    """Decide the session timer for a received INVITE/UPDATE; None: no session timer (no Session-Expires).

    Raises ParseError for a malformed Session-Expires (answer 400).
    """
    value = headers.get("Session-Expires")
    if value is None:
        return None
    offered = SessionExpires.parse(value)
    if offered.interval < min_se:
        return TooSmall(min_se)
    uac_supports = "timer" in {item.strip().lower() for item in headers.get_all("Supported")}
    refresher: Refresher = offered.refresher or preferred
    if not uac_supports:
        refresher = "uas"  # a UAC without the extension cannot refresh (RFC 4028 §9)
    return SessionDecision(interval=offered.interval, refresher=refresher, require_timer=uac_supports)


def response_headers(decision: SessionDecision) -> list[tuple[str, str]]:
    """The 2xx header fields for a :class:`SessionDecision` (RFC 4028 §9)."""
    headers = [("Require", "timer")] if decision.require_timer else []
    headers.append(("Session-Expires", str(SessionExpires(decision.interval, decision.refresher))))
    return headers


def uac_outcome(headers: Headers) -> SessionExpires | None:
    """RFC 4028 §7.2: the session timer a 2xx to our request set up; None if it has no Session-Expires.

    A 2xx without the refresher parameter leaves the refresh to us (the UAC).
    """
    value = headers.get("Session-Expires")
    if value is None:
        return None
    result = SessionExpires.parse(value)
    return result if result.refresher else SessionExpires(result.interval, "uac")


class SessionTimer:
    """The running session timer of one dialog.

    ``refresh_at`` is when we must refresh (we are the refresher: half the interval, RFC 4028 §7.4);
    ``expires_at`` is when we give up and send BYE: the interval minus min(32, interval/3) (RFC 4028 §10).
    """

    __slots__ = ("interval", "local_refresher", "min_se", "refresh_pending", "refreshed_at")

    def __init__(self, *, interval: int, local_refresher: bool, now: float, min_se: int) -> None:
        self.interval = interval
        self.local_refresher = local_refresher
        self.refreshed_at = now
        self.min_se = min_se
        self.refresh_pending = False
        """True while our refresh request is queued or in flight."""

    def refreshed(self, *, interval: int, local_refresher: bool, now: float) -> None:
        """A refresh succeeded (either direction)."""
        self.interval = interval
        self.local_refresher = local_refresher
        self.refreshed_at = now
        self.refresh_pending = False

    @property
    def refresh_at(self) -> float | None:
        if not self.local_refresher or self.refresh_pending:
            return None
        return self.refreshed_at + self.interval / 2

    @property
    def expires_at(self) -> float:
        return self.refreshed_at + self.interval - min(32.0, self.interval / 3)

    @property
    def deadline(self) -> float:
        refresh_at = self.refresh_at
        return self.expires_at if refresh_at is None else min(refresh_at, self.expires_at)

    @property
    def refresher(self) -> Refresher:
        """The refresher value for a request we send now (we are its UAC)."""
        return "uac" if self.local_refresher else "uas"
