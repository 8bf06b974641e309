"""chime-sdk-meetings errors and the field checks botocore leaves to the server.

botocore validates only ``required``, ``min`` and types on the client; maximum lengths, patterns and the
reserved ``aws:`` prefix reach the service, which answers ``BadRequestException`` (400). Messages follow the
service's "1 validation error detected" style and never echo values: ExternalUserId, ExternalMeetingId and
ClientRequestToken are ``sensitive`` in the API model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "ERROR_STATUS",
    "MEDIA_REGIONS",
    "MeetingsApiError",
    "bad_request",
    "check_attendee_capabilities",
    "check_client_request_token",
    "check_external_meeting_id",
    "check_external_user_id",
    "check_guid",
    "check_media_region",
    "check_optional_string",
    "parse_max_results",
    "require_object",
]

# Error shape name -> HTTP status, from the API model's error traits.
ERROR_STATUS: Final[Mapping[str, int]] = {
    "BadRequestException": 400,
    "UnauthorizedException": 401,
    "ForbiddenException": 403,
    "NotFoundException": 404,
    "ConflictException": 409,
    "LimitExceededException": 400,
    "UnprocessableEntityException": 422,
    "ThrottlingException": 429,
    "ServiceFailureException": 500,
    "ServiceUnavailableException": 503,
}

# Media Regions the developer guide lists for chime-sdk-meetings; anything else is refused.
MEDIA_REGIONS: Final[frozenset[str]] = frozenset(
    {
        "af-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ca-central-1",
        "eu-central-1",
        "eu-north-1",
        "eu-south-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "il-central-1",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-gov-east-1",
        "us-gov-west-1",
        "us-west-1",
        "us-west-2",
    }
)

_GUID = re.compile(r"[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}")
_EXTERNAL_USER_ID = re.compile(r"[-_&@+=,(){}\[\]/«».:|'\"#a-zA-Z0-9À-ÿ\s]*")
_CLIENT_REQUEST_TOKEN = re.compile(r"[-_a-zA-Z0-9]*")
_MEDIA_CAPABILITIES: Final = frozenset({"SendReceive", "Send", "Receive", "None"})
_RESERVED_PREFIX: Final = "aws:"


class MeetingsApiError(Exception):
    """An API error as the service reports it: shape name, HTTP status, message, optional Retry-After."""

    def __init__(self, code: str, message: str, *, retry_after: int | None = None) -> None:
        if code not in ERROR_STATUS:
            raise ValueError(f"unknown chime-sdk-meetings error shape {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.status = ERROR_STATUS[code]
        self.message = message
        self.retry_after = retry_after


def bad_request(member: str, constraint: str) -> MeetingsApiError:
    """A ``BadRequestException`` naming the member and the failed constraint, never the value."""
    return MeetingsApiError(
        "BadRequestException",
        f"1 validation error detected: Value at '{member}' failed to satisfy constraint: {constraint}",
    )


def require_object(body: object, member: str = "body") -> Mapping[str, Any]:
    """The request body (or a nested member) must be a JSON object."""
    if not isinstance(body, Mapping):
        raise bad_request(member, "Member must be a structure")
    return body


def _check_length(value: object, member: str, low: int, high: int, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise bad_request(member, "Member must not be null")
        return None
    if not isinstance(value, str):
        raise bad_request(member, "Member must be a string")
    if len(value) < low:
        raise bad_request(member, f"Member must have length greater than or equal to {low}")
    if len(value) > high:
        raise bad_request(member, f"Member must have length less than or equal to {high}")
    return value


def check_guid(value: str, member: str) -> str:
    """MeetingId / AttendeeId (``GuidString``)."""
    if _GUID.fullmatch(value) is None:
        raise bad_request(member, f"Member must satisfy regular expression pattern: {_GUID.pattern}")
    return value


def check_external_user_id(
    value: object, member: str = "externalUserId", *, required: bool = True
) -> str | None:
    """ExternalUserId: 2..64 characters, the model's pattern, and not the reserved ``aws:`` prefix."""
    text = _check_length(value, member, 2, 64, required=required)
    if text is None:
        return None
    if _EXTERNAL_USER_ID.fullmatch(text) is None:
        raise bad_request(member, "Member must satisfy the ExternalUserId pattern")
    if text[: len(_RESERVED_PREFIX)].lower() == _RESERVED_PREFIX:
        raise MeetingsApiError(
            "BadRequestException", f"Values of '{member}' that begin with aws: are reserved"
        )
    return text


def check_external_meeting_id(value: object) -> str:
    """ExternalMeetingId: required, 2..64 characters."""
    text = _check_length(value, "externalMeetingId", 2, 64, required=True)
    assert text is not None  # noqa: S101 - required=True never returns None; narrows the type for mypy
    return text


def check_client_request_token(value: object) -> str:
    """ClientRequestToken: required, 2..64 characters of ``[-_a-zA-Z0-9]``."""
    text = _check_length(value, "clientRequestToken", 2, 64, required=True)
    assert text is not None  # noqa: S101 - required=True never returns None; narrows the type for mypy
    if _CLIENT_REQUEST_TOKEN.fullmatch(text) is None:
        raise bad_request(
            "clientRequestToken",
            f"Member must satisfy regular expression pattern: {_CLIENT_REQUEST_TOKEN.pattern}",
        )
    return text


def check_media_region(value: object) -> str:
    """MediaRegion: required, 2..64 characters, one of the documented Media Regions."""
    text = _check_length(value, "mediaRegion", 2, 64, required=True)
    assert text is not None  # noqa: S101 - required=True never returns None; narrows the type for mypy
    if text not in MEDIA_REGIONS:
        raise MeetingsApiError("BadRequestException", f"Unsupported MediaRegion {text!r}")
    return text


def check_optional_string(value: object, member: str, low: int, high: int) -> str | None:
    """An optional string member with length bounds."""
    return _check_length(value, member, low, high, required=False)


def check_attendee_capabilities(value: object, member: str = "capabilities") -> dict[str, str] | None:
    """AttendeeCapabilities: when present, Audio, Video and Content are all required enum values."""
    if value is None:
        return None
    capabilities = require_object(value, member)
    checked: dict[str, str] = {}
    for kind in ("Audio", "Video", "Content"):
        choice = capabilities.get(kind)
        if not isinstance(choice, str) or choice not in _MEDIA_CAPABILITIES:
            raise bad_request(
                f"{member}.{kind[0].lower()}{kind[1:]}",
                "Member must satisfy enum value set: [SendReceive, Send, Receive, None]",
            )
        checked[kind] = choice
    return checked


def parse_max_results(raw: str | None, default: int = 100) -> int:
    """ListAttendees ``max-results``: an integer 1..100."""
    if raw is None:
        return default
    if not raw.isdigit():
        raise bad_request("maxResults", "Member must be an integer")
    value = int(raw)
    if not 1 <= value <= 100:
        raise bad_request("maxResults", "Member must have value between 1 and 100")
    return value
