"""The dial job: the one definition of what the control plane asks the media worker to do.

Both sides import this module (the worker image copies it), so producer and consumer cannot drift apart.
The message body on SQS is ``DialRequest.to_json()``; the worker reads it with ``DialRequest.from_json()``.

The join token is a bearer credential for the meeting: it is a ``SecretStr``, hidden from ``repr``/``str``,
and validation errors never echo input values (``hide_input_in_errors``), so a token cannot leak through an
exception message or a log line that prints the model.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    model_validator,
)

__all__ = [
    "CODECS",
    "CONTRACT_VERSION",
    "DEFAULT_JOIN_NUMBER",
    "MEDIA_APPS",
    "SRTP_SUITES",
    "Codec",
    "DialRequest",
    "DialTarget",
    "InvalidDialRequest",
    "MediaApp",
    "SrtpSuiteName",
    "describe_validation_error",
]

CONTRACT_VERSION: Final = 1
REDACTED: Final = "***"

#: The Voice Connector's meeting-join number, as the seed writes it (AWS pages also write +17035550122).
DEFAULT_JOIN_NUMBER: Final = "17035550122"

Codec = Literal["PCMU", "PCMA", "G722"]
CODECS: Final[tuple[Codec, ...]] = ("PCMU", "PCMA", "G722")

SrtpSuiteName = Literal[
    "AES_CM_128_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_32",
    "AES_256_CM_HMAC_SHA1_80",
    "AES_256_CM_HMAC_SHA1_32",
    "AEAD_AES_128_GCM",
    "AEAD_AES_256_GCM",
]
SRTP_SUITES: Final[tuple[SrtpSuiteName, ...]] = (
    "AES_CM_128_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_32",
    "AES_256_CM_HMAC_SHA1_80",
    "AES_256_CM_HMAC_SHA1_32",
    "AEAD_AES_128_GCM",
    "AEAD_AES_256_GCM",
)

MediaApp = Literal["silence", "announce", "record", "echo", "tone"]
MEDIA_APPS: Final[tuple[MediaApp, ...]] = ("silence", "announce", "record", "echo", "tone")

# RFC 3261 §19.1.1 host: a DNS name or an IPv4 literal (IPv6 references are bracketed).
_HOST_PATTERN: Final = r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+$|^\[[0-9A-Fa-f:.]+\]$"
_E164_PATTERN: Final = r"^\+[1-9][0-9]{1,14}$"
_GUID_PATTERN: Final = r"^[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}$"

Guid = Annotated[str, Field(pattern=_GUID_PATTERN)]
OptionValue = str | int | float | bool


class InvalidDialRequest(ValueError):
    """A dial job could not be accepted. The message names fields and reasons, never input values."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class DialTarget(_Frozen):
    """Where and how to dial: one Voice Connector and the call's media policy."""

    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    host: str = Field(min_length=1, max_length=253, pattern=_HOST_PATTERN)
    """Voice Connector outbound host name, e.g. ``abcdef1ghij2klmno3pqr4.voiceconnector.chime.aws``."""
    port: int = Field(default=5061, ge=1, le=65535)
    join_number: str = Field(default=DEFAULT_JOIN_NUMBER, pattern=r"^\+?[0-9]{1,15}$")
    """User part of the request URI."""
    from_number: str = Field(pattern=_E164_PATTERN)
    """E.164 number put in ``From``: the Voice Connector recognises E.164 only."""
    codecs: tuple[Codec, ...] = Field(default=("PCMU", "PCMA"), min_length=1)
    srtp_suites: tuple[SrtpSuiteName, ...] = Field(
        default=("AES_CM_128_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"),
        min_length=1,
    )
    """SDES suites to offer, most preferred first."""
    media_app: MediaApp = "silence"
    media_options: dict[str, OptionValue] = Field(default_factory=dict)
    ring_timeout_s: float = Field(default=60.0, gt=0, le=600)
    max_duration_s: float = Field(default=86_400.0, gt=0, le=86_400)
    """A meeting lasts at most 24 h, so no call needs to outlive that."""


class DialRequest(_Frozen):
    """Version 1 of the dial job. ``call_id`` is stable across re-dials; ``attempt`` counts them."""

    version: Literal[1] = CONTRACT_VERSION
    call_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:#-]+$")
    attempt: int = Field(default=1, ge=1, le=100)
    meeting_id: Guid
    external_meeting_id: str | None = Field(default=None, min_length=2, max_length=64)
    media_region: str = Field(min_length=1, max_length=32)
    attendee_id: Guid
    join_token: SecretStr = Field(min_length=2, max_length=2048)
    target: DialTarget
    requested_at: datetime
    event_id: str = Field(min_length=1, max_length=128)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_versions(cls, data: Any) -> Any:
        if isinstance(data, dict) and "version" in data and data["version"] != CONTRACT_VERSION:
            raise ValueError(
                f"unsupported DialRequest version {data['version']!r}: this code understands "
                f"version {CONTRACT_VERSION}; deploy matching control plane and worker versions"
            )
        return data

    @field_serializer("join_token", when_used="json")
    def _reveal_token_on_the_wire(self, token: SecretStr) -> str:
        # The queue is the one place the token must travel in clear (SQS encrypts it at rest).
        return token.get_secret_value()

    def to_json(self) -> str:
        """The SQS message body."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, body: str | bytes) -> DialRequest:
        """Parse a message body; raises ``InvalidDialRequest`` naming fields, never echoing values."""
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidDialRequest(describe_validation_error(exc)) from None

    def redacted(self) -> dict[str, Any]:
        """A log-safe dict: the token replaced by a fixed marker."""
        data: dict[str, Any] = json.loads(self.model_dump_json())
        data["join_token"] = REDACTED
        return data


def describe_validation_error(exc: ValidationError) -> str:
    """One line per failed field, ``loc: message``; input values are never included."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
