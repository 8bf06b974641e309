"""The three Chime SDK Meetings calls the control plane makes, with error mapping and our own retry loop.

The boto3 client handed in must have botocore's retries switched off (``clients.get_meetings_client()``
does): botocore's standard mode retries ``LimitExceededException``, which for CreateAttendee means "250
attendees" and never goes away. Here only throttling, 5xx and transport failures are retried, with capped
exponential backoff and jitter, honouring the service's ``Retry-After`` hint; when the attempts run out,
``MeetingsUnavailable`` lets the invocation fail so EventBridge delivers the event again later.

No log line or exception message here carries a join token, an ExternalUserId or the service's error text.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

import botocore.exceptions
from pydantic import SecretStr

from chalicelib.errors import (
    AttendeeLimitReached,
    MeetingGone,
    MeetingsRequestRejected,
    MeetingsUnavailable,
)

__all__ = ["RETRYABLE_CODES", "CreatedAttendee", "MeetingsClient"]

#: Error codes worth another attempt (chime-sdk-meetings model: 429, 503, 500) plus bare 5xx statuses, which
#: botocore reports as the code when the body is empty or not JSON.
RETRYABLE_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "ServiceFailureException",
        "500",
        "502",
        "503",
        "504",
    }
)
_NOT_FOUND: Final = "NotFoundException"
_LIMIT_EXCEEDED: Final = "LimitExceededException"
_TRANSPORT: Final = "TransportError"
_INVALID_RESPONSE: Final = "InvalidResponse"
# chime-sdk-meetings GuidString and ExternalUserId (botocore checks neither patterns nor max lengths).
_GUID: Final = re.compile(r"[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}")
_EXTERNAL_USER_ID: Final = re.compile(r"[-_&@+=,(){}\[\]/«».:|'\"#a-zA-Z0-9À-ÿ\s]{2,64}")


@dataclass(frozen=True, slots=True)
class CreatedAttendee:
    attendee_id: str
    external_user_id: str
    join_token: SecretStr = field(repr=False)


class _Retry(Exception):
    """Internal: this attempt failed in a way worth retrying."""

    def __init__(self, code: str, retry_after_s: float | None) -> None:
        super().__init__(code)
        self.code = code
        self.retry_after_s = retry_after_s


class MeetingsClient:
    """CreateAttendee / DeleteAttendee / GetMeeting over an injected boto3 ``chime-sdk-meetings`` client.

    ``sleep`` and ``jitter`` (uniform in [0, 1)) are injected so tests observe the backoff without waiting.
    After failed attempt ``n`` (from 1) it waits ``d/2 + jitter()*d/2``, where
    ``d = min(max_delay_s, base_delay_s * 2**(n-1))``, or the service's ``Retry-After`` if longer. A
    ``Retry-After`` beyond ``max_delay_s`` ends the loop at once: no point holding the Lambda, the
    redelivered event will try later.
    """

    def __init__(
        self,
        client: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 4,
        base_delay_s: float = 0.2,
        max_delay_s: float = 5.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 < base_delay_s <= max_delay_s:
            raise ValueError("need 0 < base_delay_s <= max_delay_s")
        self._client = client
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._jitter = jitter

    def create_attendee(self, meeting_id: str, external_user_id: str) -> CreatedAttendee:
        """Create our SIP attendee. Raises MeetingGone, AttendeeLimitReached, MeetingsUnavailable or
        MeetingsRequestRejected."""
        _require_guid("meeting_id", meeting_id)
        if not _EXTERNAL_USER_ID.fullmatch(external_user_id) or external_user_id.startswith("aws:"):
            raise ValueError(
                "external_user_id must be 2..64 ExternalUserId characters, not starting with 'aws:'"
            )

        def call() -> Any:
            return self._client.create_attendee(MeetingId=meeting_id, ExternalUserId=external_user_id)

        response = self._call("CreateAttendee", meeting_id, call)
        attendee = response.get("Attendee") if isinstance(response, dict) else None
        attendee_id = attendee.get("AttendeeId") if isinstance(attendee, dict) else None
        token = attendee.get("JoinToken") if isinstance(attendee, dict) else None
        if not isinstance(attendee_id, str) or not _GUID.fullmatch(attendee_id) or not isinstance(token, str):
            raise MeetingsUnavailable(
                f"CreateAttendee for meeting {meeting_id} returned no usable Attendee (AttendeeId/JoinToken)",
                operation="CreateAttendee",
                code=_INVALID_RESPONSE,
                meeting_id=meeting_id,
                attempts=1,
            )
        returned_id = attendee.get("ExternalUserId") if isinstance(attendee, dict) else None
        return CreatedAttendee(
            attendee_id=attendee_id,
            external_user_id=returned_id if isinstance(returned_id, str) else external_user_id,
            join_token=SecretStr(token),
        )

    def delete_attendee(self, meeting_id: str, attendee_id: str) -> bool:
        """Remove an attendee (its join token dies with it). False if it or the meeting was already gone."""
        _require_guid("meeting_id", meeting_id)
        _require_guid("attendee_id", attendee_id)
        try:
            self._call(
                "DeleteAttendee",
                meeting_id,
                lambda: self._client.delete_attendee(MeetingId=meeting_id, AttendeeId=attendee_id),
            )
        except MeetingGone:
            return False
        return True

    def get_meeting(self, meeting_id: str) -> bool:
        """True if the meeting still exists, False if the service says it does not."""
        _require_guid("meeting_id", meeting_id)
        try:
            self._call("GetMeeting", meeting_id, lambda: self._client.get_meeting(MeetingId=meeting_id))
        except MeetingGone:
            return False
        return True

    # --- retry loop and error mapping -----------------------------------------------------------------------

    def _call(self, operation: str, meeting_id: str, call: Callable[[], Any]) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(operation, meeting_id, call)
            except _Retry as retry:
                delay = self._delay_before_retry(attempt, retry)
                if delay is None:
                    raise MeetingsUnavailable(
                        f"{operation} for meeting {meeting_id} still failing with {retry.code} "
                        f"after {attempt} attempt(s)",
                        operation=operation,
                        code=retry.code,
                        meeting_id=meeting_id,
                        attempts=attempt,
                        retry_after_s=retry.retry_after_s,
                    ) from None
            self._sleep(delay)

    def _delay_before_retry(self, attempt: int, retry: _Retry) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if attempt >= self._max_attempts:
            return None
        delay = self._backoff(attempt)
        if retry.retry_after_s is not None:
            if retry.retry_after_s > self._max_delay_s:
                return None
            delay = max(delay, retry.retry_after_s)
        return delay

    def _attempt(self, operation: str, meeting_id: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except botocore.exceptions.ClientError as exc:
            _map_client_error(operation, meeting_id, exc)
        except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as exc:
            # Connection refused/reset, timeouts: transient by nature. The exception text names the endpoint
            # only, but it is dropped all the same to keep messages uniform.
            raise _Retry(_TRANSPORT, None) from exc

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._max_delay_s, self._base_delay_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._jitter() * ceiling / 2


def _map_client_error(operation: str, meeting_id: str, exc: botocore.exceptions.ClientError) -> NoReturn:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "Unknown")
    if code in RETRYABLE_CODES:
        raise _Retry(code, _retry_after(exc.response)) from exc
    if code == _NOT_FOUND:
        raise MeetingGone(
            f"{operation}: meeting {meeting_id} has ended or does not exist",
            operation=operation,
            code=code,
            meeting_id=meeting_id,
        ) from None
    if code == _LIMIT_EXCEEDED and operation == "CreateAttendee":
        raise AttendeeLimitReached(
            f"{operation}: meeting {meeting_id} has reached its attendee limit",
            operation=operation,
            code=code,
            meeting_id=meeting_id,
        ) from None
    request_id = exc.response.get("ResponseMetadata", {}).get("RequestId") or "unknown"
    raise MeetingsRequestRejected(
        f"{operation} for meeting {meeting_id} refused with {code} (request id {request_id}); "
        "retrying will not help: check IAM permissions and the request",
        operation=operation,
        code=code,
        meeting_id=meeting_id,
    ) from None


def _retry_after(response: dict[str, Any]) -> float | None:
    # Modeled member RetryAfterSeconds (from the Retry-After header) on ServiceUnavailableException.
    raw = response.get("RetryAfterSeconds")
    if raw is None:
        raw = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("retry-after")
    try:
        value = float(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None  # An HTTP-date or garbage: fall back to our own backoff.
    return value if value is not None and value >= 0 else None


def _require_guid(name: str, value: str) -> None:
    if not _GUID.fullmatch(value):
        raise ValueError(f"{name} must be a Chime GUID")
