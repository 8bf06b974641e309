"""Logging, metrics and tracing for the control-plane handlers (Powertools: JSON logs, EMF metrics, X-Ray).

Handlers call ``start_invocation()`` first (a warm Lambda keeps logger keys between invocations) and
``flush()`` last, in a ``finally``: Chalice handlers cannot stack Powertools' ``(event, context)`` decorators,
so metrics are flushed by hand. Outside Lambda the EMF blob is printed to stdout; the Tracer is a no-op.

Nothing here logs a join token: dial jobs go through ``DialRequest.redacted()`` and every helper masks keys
that name a secret or a ``sensitive`` external id.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from chalicelib.contract import DialRequest

__all__ = [
    "ATTENDEES_CREATED",
    "CALLS_FAILED",
    "CREATE_ATTENDEE_ERRORS",
    "DEFAULT_NAMESPACE",
    "DEFAULT_SERVICE",
    "EVENTS_RECEIVED",
    "EVENTS_REJECTED",
    "HANGUPS_REQUESTED",
    "JOBS_ENQUEUED",
    "KNOWN_METRICS",
    "MASKED",
    "MEETINGS_SKIPPED",
    "REDIALS",
    "SWEEPER_RUNS",
    "count",
    "flush",
    "get_metrics",
    "log_dial_request",
    "log_rejection",
    "logger",
    "safe_keys",
    "start_invocation",
    "tracer",
]

DEFAULT_SERVICE: Final = "control-plane"
DEFAULT_NAMESPACE: Final = "ChimeDialout"
_SERVICE_ENV: Final = "POWERTOOLS_SERVICE_NAME"
_NAMESPACE_ENV: Final = "POWERTOOLS_METRICS_NAMESPACE"

EVENTS_RECEIVED: Final = "EventsReceived"
EVENTS_REJECTED: Final = "EventsRejected"  # dimension: reason
ATTENDEES_CREATED: Final = "AttendeesCreated"
CREATE_ATTENDEE_ERRORS: Final = "CreateAttendeeErrors"  # dimension: code
JOBS_ENQUEUED: Final = "JobsEnqueued"
MEETINGS_SKIPPED: Final = "MeetingsSkipped"
HANGUPS_REQUESTED: Final = "HangupsRequested"  # dimension: reason
REDIALS: Final = "Redials"
CALLS_FAILED: Final = "CallsFailed"  # dimension: reason
SWEEPER_RUNS: Final = "SweeperRuns"
KNOWN_METRICS: Final = frozenset(
    {
        EVENTS_RECEIVED,
        EVENTS_REJECTED,
        ATTENDEES_CREATED,
        CREATE_ATTENDEE_ERRORS,
        JOBS_ENQUEUED,
        MEETINGS_SKIPPED,
        HANGUPS_REQUESTED,
        REDIALS,
        CALLS_FAILED,
        SWEEPER_RUNS,
    }
)

MASKED: Final = "***"
# Keys whose values never reach a log line: bearer tokens, and ids the Chime API model marks sensitive.
_SECRET_KEYS: Final = frozenset(
    {"join_token", "joinToken", "JoinToken", "token", "external_user_id", "externalUserId", "ExternalUserId"}
    | {"external_meeting_id", "externalMeetingId", "ExternalMeetingId"}
)
_MAX_DIMENSION_VALUE: Final = 250

# Powertools objects are fine at import: they only read their own POWERTOOLS_* variables.
logger: Final = Logger(service=os.environ.get(_SERVICE_ENV) or DEFAULT_SERVICE)
tracer: Final = Tracer(service=os.environ.get(_SERVICE_ENV) or DEFAULT_SERVICE)


def _service() -> str:
    return os.environ.get(_SERVICE_ENV) or DEFAULT_SERVICE


def _namespace() -> str:
    return os.environ.get(_NAMESPACE_ENV) or DEFAULT_NAMESPACE


def get_metrics() -> Metrics:
    """The shared metric set (Powertools keeps one per process), namespace and service read now."""
    return Metrics(namespace=_namespace(), service=_service())


def count(metric: str, value: float = 1, **dimensions: str) -> None:
    """Count ``metric``.

    The total always goes into the main blob (dimension ``service`` only, good for alarms); with
    ``dimensions``, a separate single-metric blob also records the breakdown (``service`` + dimensions).
    """
    if metric not in KNOWN_METRICS:
        raise ValueError(f"unknown metric name {metric!r}; add it to observability.KNOWN_METRICS")
    for name, dim_value in dimensions.items():
        if not isinstance(dim_value, str) or not 0 < len(dim_value) <= _MAX_DIMENSION_VALUE:
            raise ValueError(f"dimension {name!r} must be a non-empty string of at most 250 characters")
    get_metrics().add_metric(name=metric, unit=MetricUnit.Count, value=value)
    if dimensions:
        with single_metric(
            name=metric,
            unit=MetricUnit.Count,
            value=value,
            namespace=_namespace(),
            default_dimensions={"service": _service(), **dimensions},
        ):
            pass  # The blob is printed when the context exits.


def flush() -> None:
    """Print the pending EMF blob (if any metric was counted) and start a new one."""
    metrics = get_metrics()
    # Powertools warns on an empty flush; an invocation that counted nothing is normal here.
    if metrics.provider.metric_set:
        metrics.flush_metrics()


def safe_keys(keys: Mapping[str, Any]) -> dict[str, Any]:
    """``keys`` with every secret or sensitive value replaced by ``MASKED``."""
    return {name: MASKED if name in _SECRET_KEYS else value for name, value in keys.items()}


def start_invocation(correlation_id: str | None = None, **keys: Any) -> None:
    """Reset per-invocation log state, then tag every following log line with the correlation id and keys."""
    logger.clear_state()
    logger.set_correlation_id(correlation_id)
    if keys:
        logger.append_keys(**safe_keys(keys))


def log_rejection(reason: str, detail: str, **keys: Any) -> None:
    """Log and count an input we refused (``EventsRejected``, dimension ``reason``).

    ``reason``/``detail`` come from ``InvalidEvent`` and hold no input values.
    """
    logger.warning("input rejected", extra={"reason": reason, "detail": detail, **safe_keys(keys)})
    count(EVENTS_REJECTED, reason=reason)


def log_dial_request(message: str, job: DialRequest, **keys: Any) -> None:
    """Log a dial job with its join token masked."""
    logger.info(message, extra={"job": job.redacted(), **safe_keys(keys)})
