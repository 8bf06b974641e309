"""The control plane's own error types.

Every failure the handlers must tell apart has its own class, so a handler decides with ``except`` what to do:
reject and count (``InvalidEvent``), give up quietly (``MeetingGone``), fail the invocation so the platform
retries it (``MeetingsUnavailable``, ``EnqueueFailed``), or stop and page someone (``ConfigurationError``).

Messages name fields, variables, operations and error codes, never input values: meeting events carry
``sensitive`` external ids and responses carry join tokens.
"""

from __future__ import annotations

__all__ = [
    "AttendeeLimitReached",
    "ConfigurationError",
    "ControlPlaneError",
    "EnqueueFailed",
    "InvalidEvent",
    "MeetingGone",
    "MeetingsApiError",
    "MeetingsRequestRejected",
    "MeetingsUnavailable",
]


class ControlPlaneError(Exception):
    """Base class of every error raised by ``chalicelib``."""


class ConfigurationError(ControlPlaneError):
    """The deployment is misconfigured: an environment variable is missing or invalid.

    Retrying cannot help; fix the stage configuration and redeploy.
    """

    def __init__(self, message: str, *, variable: str | None = None) -> None:
        super().__init__(message)
        self.variable = variable


class InvalidEvent(ControlPlaneError):
    """An incoming event was rejected; the sender broke the documented event shape.

    ``reason`` is a short metric-friendly code (``wrong_source``, ``wrong_detail_type``,
    ``unknown_event_type``, ``missing_field``, ``bad_id``, ``oversized``, ``malformed``); ``detail`` names the
    fields involved.
    Neither ever contains a value taken from the event.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class MeetingsApiError(ControlPlaneError):
    """The Chime SDK Meetings API refused or failed a request.

    ``code`` is the service error code (e.g. ``NotFoundException``) or a status/transport marker; it is safe
    to use as a metric dimension. The service's own message is deliberately not kept: it may quote request
    fields.
    """

    def __init__(self, message: str, *, operation: str, code: str, meeting_id: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.code = code
        self.meeting_id = meeting_id


class MeetingGone(MeetingsApiError):
    """The meeting has ended or never existed (``NotFoundException``). Nothing to retry."""


class AttendeeLimitReached(MeetingsApiError):
    """The meeting already has its maximum number of attendees (``LimitExceededException``). Not transient."""


class MeetingsUnavailable(MeetingsApiError):
    """The service stayed throttled or unavailable through every attempt.

    Let the invocation fail so the event is delivered again later. ``retry_after_s`` carries the service's
    ``Retry-After`` hint when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        code: str,
        meeting_id: str,
        attempts: int,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, operation=operation, code=code, meeting_id=meeting_id)
        self.attempts = attempts
        self.retry_after_s = retry_after_s


class MeetingsRequestRejected(MeetingsApiError):
    """The service refused the request itself (bad request, forbidden, unauthorized, unprocessable).

    Retrying the same request cannot succeed: this is a bug or an IAM/configuration problem on our side.
    """


class EnqueueFailed(ControlPlaneError):
    """A dial job could not be put on the dial queue. Fail the invocation so the platform retries it."""
