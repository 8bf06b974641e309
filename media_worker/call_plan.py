"""What one call will do, decided before dialling: URIs, media policy, timers. Token-free in every repr."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from chalicelib.contract import DialRequest, DialTarget

from .audio import codec_by_name
from .settings import WorkerSettings
from .sip import DigestCredentials, ParseError, SipUri, chime_join_uri, chime_to_uri, redact_uri
from .sip.exceptions import LocalProtocolError

__all__ = ["DEFAULT_CODECS", "DEFAULT_SUITES", "SIPS_PORT", "CallPlan", "CallPlanError"]

SIPS_PORT: Final = 5061  # RFC 3261 §26.2: the default port of SIP over TLS; the Voice Connector's too
DEFAULT_CODECS: Final[tuple[str, ...]] = tuple(DialTarget.model_fields["codecs"].default)
DEFAULT_SUITES: Final[tuple[str, ...]] = tuple(DialTarget.model_fields["srtp_suites"].default)
_E164: Final = re.compile(r"\+[1-9][0-9]{1,14}")
_DTMF: Final = re.compile(r"[0-9*#A-Da-d]{1,64}")


class CallPlanError(ValueError):
    """The call cannot be planned (bad URI, number or option); the message never contains a join token."""


@dataclass(frozen=True, slots=True)
class CallPlan:
    """Everything a :class:`~media_worker.call.Call` needs. ``request_uri`` and ``to`` carry the join token:
    they are only ever written to the wire, never into a repr, log or summary."""

    request_uri: SipUri = field(repr=False)
    from_uri: SipUri
    to: SipUri = field(repr=False)
    codecs: tuple[str, ...]
    """Offered codecs we can also play and record, most preferred first (may be empty: nothing to offer)."""
    suites: tuple[str, ...]
    media_app: str = "silence"
    media_options: Mapping[str, object] = field(default_factory=dict)
    ring_timeout_s: float = 60.0
    max_duration_s: float = 86_400.0
    dtmf: str | None = None
    """Digits sent (RFC 4733) once the call is connected."""
    credentials: DigestCredentials | None = None
    label: str = ""
    """Names the call in logs: call id, attempt, target; token-free."""
    host: str = ""
    """Where the TLS connection goes: the Voice Connector's outbound host name (also the SNI)."""
    port: int = SIPS_PORT

    def __repr__(self) -> str:
        return (
            f"CallPlan(label={self.label!r}, host={self.host!r}, port={self.port}, "
            f"from={str(self.from_uri)!r}, codecs={self.codecs}, suites={self.suites}, "
            f"media_app={self.media_app!r})"
        )

    def summary(self) -> dict[str, Any]:
        """Secret-free description for logs and the CLI."""
        return {
            "label": self.label,
            "request_uri": redact_uri(str(self.request_uri)),
            "to": redact_uri(str(self.to)),
            "from": str(self.from_uri),
            "host": self.host,
            "port": self.port,
            "codecs": list(self.codecs),
            "suites": list(self.suites),
            "media_app": self.media_app,
            "ring_timeout_s": self.ring_timeout_s,
            "max_duration_s": self.max_duration_s,
            "dtmf": self.dtmf is not None,
        }

    @classmethod
    def from_dial_request(cls, job: DialRequest, settings: WorkerSettings) -> CallPlan:
        """The documented join URI (``sip:<number>@<host>;transport=tls;X-chime-join-token=<token>``), a To
        carrying the token and the meeting id, and an E.164 From (chime-facts §3.1)."""
        target = job.target
        token = job.join_token.get_secret_value()
        port = None if target.port == SIPS_PORT else target.port
        try:
            request_uri = chime_join_uri(
                join_number=target.join_number, host=target.host, join_token=token, port=port
            )
            to = chime_to_uri(
                join_number=target.join_number,
                host=target.host,
                join_token=token,
                meeting_id=job.meeting_id,
                port=port,
            )
        except LocalProtocolError as exc:
            raise CallPlanError(redact_uri(str(exc))) from None
        dtmf = target.media_options.get("dtmf")
        return cls(
            request_uri=request_uri,
            from_uri=_from_uri(target.from_number, target.host),
            to=to,
            codecs=_playable(target.codecs),
            suites=tuple(target.srtp_suites),
            media_app=target.media_app,
            media_options=MappingProxyType(dict(target.media_options)),
            ring_timeout_s=target.ring_timeout_s,
            max_duration_s=target.max_duration_s,
            dtmf=_dtmf(dtmf if isinstance(dtmf, str) else None),
            credentials=_credentials(settings),
            label=f"{job.call_id}#{job.attempt}@{target.name}",
            host=target.host,
            port=target.port,
        )

    @classmethod
    def for_uri(
        cls,
        uri: str,
        from_number: str,
        *,
        codecs: Sequence[str] = DEFAULT_CODECS,
        suites: Sequence[str] = DEFAULT_SUITES,
        media_app: str = "silence",
        media_options: Mapping[str, object] | None = None,
        ring_timeout_s: float = 60.0,
        max_duration_s: float = 86_400.0,
        dtmf: str | None = None,
        credentials: DigestCredentials | None = None,
        meeting_id: str | None = None,
        label: str = "cli",
    ) -> CallPlan:
        """A plan for a URI typed by hand (the ``call`` command); ``transport=tls`` is added if missing."""
        try:
            parsed = SipUri.parse(uri.strip())
        except ParseError as exc:
            raise CallPlanError(f"not a usable SIP URI: {redact_uri(str(exc))}") from None
        if parsed.user is None:
            raise CallPlanError("the URI needs a user part (the join number)")
        request_uri = parsed if parsed.has_param("transport") else parsed.with_params(("transport", "tls"))
        to = parsed.without_params("transport")
        if meeting_id is not None:
            to = to.with_params(("X-chime-meeting-id", meeting_id))
        return cls(
            request_uri=request_uri,
            from_uri=_from_uri(from_number, parsed.host),
            to=to,
            codecs=_playable(codecs),
            suites=tuple(suites),
            media_app=media_app,
            media_options=MappingProxyType(dict(media_options or {})),
            ring_timeout_s=ring_timeout_s,
            max_duration_s=max_duration_s,
            dtmf=_dtmf(dtmf),
            credentials=credentials,
            label=label,
            host=parsed.host,
            port=parsed.port or SIPS_PORT,
        )


def _from_uri(number: str, host: str) -> SipUri:
    # The Voice Connector recognises E.164 only (chime-facts §3.1).
    if not _E164.fullmatch(number):
        raise CallPlanError("the From number must be E.164: '+' then up to 15 digits")
    return SipUri("sip", number, host)


def _playable(codecs: Sequence[str]) -> tuple[str, ...]:
    """Only codecs the media plane can encode and decode are offered."""
    return tuple(name for name in codecs if codec_by_name(name) is not None)


def _dtmf(digits: str | None) -> str | None:
    if digits is None or digits == "":
        return None
    if not _DTMF.fullmatch(digits):
        raise CallPlanError("DTMF digits must be 0-9, *, #, A-D (at most 64)")
    return digits.upper()


def _credentials(settings: WorkerSettings) -> DigestCredentials | None:
    if settings.sip_username is None or settings.sip_password is None:
        return None
    return DigestCredentials(settings.sip_username, settings.sip_password.get_secret_value())
