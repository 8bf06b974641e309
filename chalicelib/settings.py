"""Control-plane settings, read from the environment when a handler asks for them (never at import time)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from chalicelib.dial_plan import DIAL_PLAN_VARIABLE, DialPlan
from chalicelib.errors import ConfigurationError

__all__ = [
    "CALLS_TABLE",
    "CALL_RECORD_TTL_DAYS",
    "DIAL_PLAN",
    "DIAL_QUEUE_URL",
    "LEASE_EXPIRED_GRACE_SECONDS",
    "MAX_DIAL_ATTEMPTS",
    "QUEUED_STUCK_SECONDS",
    "Settings",
]

DIAL_PLAN: Final = DIAL_PLAN_VARIABLE
CALLS_TABLE: Final = "CALLS_TABLE"
DIAL_QUEUE_URL: Final = "DIAL_QUEUE_URL"
MAX_DIAL_ATTEMPTS: Final = "MAX_DIAL_ATTEMPTS"
LEASE_EXPIRED_GRACE_SECONDS: Final = "LEASE_EXPIRED_GRACE_SECONDS"
QUEUED_STUCK_SECONDS: Final = "QUEUED_STUCK_SECONDS"
CALL_RECORD_TTL_DAYS: Final = "CALL_RECORD_TTL_DAYS"

# DynamoDB table names: 3..255 of [a-zA-Z0-9_.-].
_TABLE_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the handlers need from their environment.

    ``dial_plan`` is None when ``DIAL_PLAN`` is unset; only MeetingStarted handling needs it
    (``require_dial_plan()``).
    """

    calls_table: str
    dial_queue_url: str
    dial_plan: DialPlan | None = None
    max_dial_attempts: int = 5
    lease_expired_grace_s: float = 30.0
    queued_stuck_s: float = 120.0
    record_ttl_days: int = 30

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate; raises ``ConfigurationError`` naming the first bad variable."""
        plan_text = environ.get(DIAL_PLAN, "").strip()
        return cls(
            calls_table=_table_name(environ),
            dial_queue_url=_queue_url(environ),
            dial_plan=DialPlan.from_json(plan_text) if plan_text else None,
            max_dial_attempts=_int(environ, MAX_DIAL_ATTEMPTS, default=5, low=1, high=100),
            lease_expired_grace_s=float(
                _int(environ, LEASE_EXPIRED_GRACE_SECONDS, default=30, low=0, high=3600)
            ),
            queued_stuck_s=float(_int(environ, QUEUED_STUCK_SECONDS, default=120, low=10, high=86_400)),
            record_ttl_days=_int(environ, CALL_RECORD_TTL_DAYS, default=30, low=1, high=3650),
        )

    def require_dial_plan(self) -> DialPlan:
        """The dial plan, or ``ConfigurationError`` if ``DIAL_PLAN`` was not set."""
        if self.dial_plan is None:
            raise ConfigurationError(
                f"{DIAL_PLAN} is not set; it is required to handle MeetingStarted", variable=DIAL_PLAN
            )
        return self.dial_plan


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set", variable=name)
    return value


def _table_name(environ: Mapping[str, str]) -> str:
    value = _required(environ, CALLS_TABLE)
    if not (3 <= len(value) <= 255) or not set(value) <= _TABLE_NAME_CHARS:
        raise ConfigurationError(
            f"{CALLS_TABLE} must be a DynamoDB table name (3-255 characters of A-Z a-z 0-9 _ . -)",
            variable=CALLS_TABLE,
        )
    return value


def _queue_url(environ: Mapping[str, str]) -> str:
    value = _required(environ, DIAL_QUEUE_URL)
    if not value.startswith(("https://", "http://")):
        raise ConfigurationError(
            f"{DIAL_QUEUE_URL} must be an SQS queue URL (http:// or https://)", variable=DIAL_QUEUE_URL
        )
    return value


def _int(environ: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text, 10)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number", variable=name) from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low} and {high}", variable=name)
    return value
