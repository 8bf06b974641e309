"""Worker configuration, read from the environment once at start and validated with clear errors.

Every setting has an environment variable (the names below are the documented interface) and a default where
one is safe. ``WorkerSettings.from_env`` raises ``SettingsError`` listing each bad variable by name; secret
values (digest password) are never echoed.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from ipaddress import ip_address
from typing import Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = ["ENV", "SettingsError", "WorkerSettings"]

#: Environment variable for each field.
ENV: Final[dict[str, str]] = {
    "dial_queue_url": "DIAL_QUEUE_URL",
    "calls_table": "CALLS_TABLE",
    "worker_id": "WORKER_ID",
    "max_calls": "MAX_CALLS",
    "sip_ca_file": "SIP_CA_FILE",
    "sip_username": "SIP_DIGEST_USERNAME",
    "sip_password": "SIP_DIGEST_PASSWORD",
    "media_bind_ip": "MEDIA_BIND_IP",
    "media_public_ip": "MEDIA_PUBLIC_IP",
    "rtp_port_min": "RTP_PORT_MIN",
    "rtp_port_max": "RTP_PORT_MAX",
    "lease_s": "LEASE_SECONDS",
    "heartbeat_s": "HEARTBEAT_SECONDS",
    "calls_per_second": "CALLS_PER_SECOND",
    "health_host": "HEALTH_HOST",
    "health_port": "HEALTH_PORT",
    "drain_timeout_s": "DRAIN_TIMEOUT_SECONDS",
    "media_timeout_s": "MEDIA_TIMEOUT_SECONDS",
    "max_redials": "MAX_REDIALS",
    "recordings_bucket": "RECORDINGS_BUCKET",
    "recordings_dir": "RECORDINGS_DIR",
}


class SettingsError(ValueError):
    """The worker's environment is invalid; the message names every bad variable."""


class WorkerSettings(BaseModel):
    """Validated worker settings (see ``ENV`` for the variable names)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    dial_queue_url: str | None = None
    calls_table: str | None = None
    worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}", max_length=128)
    max_calls: int = Field(default=200, ge=1, le=2000)
    sip_ca_file: str | None = None
    sip_username: str | None = None
    sip_password: SecretStr | None = None
    media_bind_ip: str = "0.0.0.0"  # noqa: S104 - media must be reachable on the host's interfaces
    media_public_ip: str | None = None
    rtp_port_min: int = Field(default=20000, ge=1024, le=65534)
    rtp_port_max: int = Field(default=39999, ge=1025, le=65535)
    lease_s: float = Field(default=30.0, ge=5, le=600)
    heartbeat_s: float = Field(default=5.0, ge=0.5, le=120)
    calls_per_second: float = Field(default=1.0, gt=0, le=100)
    health_host: str = "0.0.0.0"  # noqa: S104 - the ECS health check reaches the task from outside
    health_port: int = Field(default=8080, ge=0, le=65535)
    drain_timeout_s: float = Field(default=25.0, ge=1, le=600)
    media_timeout_s: float = Field(default=60.0, ge=5, le=3600)
    max_redials: int = Field(default=3, ge=0, le=20)
    recordings_bucket: str | None = None
    recordings_dir: str = "recordings"

    @field_validator("media_bind_ip", "media_public_ip")
    @classmethod
    def _ip_literal(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ip_address(value)
            except ValueError:
                raise ValueError("must be an IPv4 or IPv6 address literal") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> WorkerSettings:
        if self.rtp_port_max - self.rtp_port_min + 1 < 2 * self.max_calls:
            raise ValueError("RTP port range must hold an RTP/RTCP pair for every call (2 x MAX_CALLS ports)")
        if self.heartbeat_s * 2 > self.lease_s:
            raise ValueError("HEARTBEAT_SECONDS must be at most half of LEASE_SECONDS")
        if (self.sip_username is None) != (self.sip_password is None):
            raise ValueError("SIP_DIGEST_USERNAME and SIP_DIGEST_PASSWORD must be set together")
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WorkerSettings:
        """Read and validate; raises ``SettingsError`` naming each bad variable."""
        values = {field: environ[name] for field, name in ENV.items() if environ.get(name, "") != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = []
            for err in exc.errors(include_input=False, include_url=False, include_context=False):
                field = str(err["loc"][0]) if err["loc"] else ""
                where = ENV.get(field, "settings")
                problems.append(f"{where}: {err['msg']}")
            raise SettingsError("invalid worker settings: " + "; ".join(problems)) from None

    def require_service(self) -> None:
        """The queue and table are needed to run as a service (not for a one-off ``call``)."""
        missing = [ENV[f] for f in ("dial_queue_url", "calls_table") if getattr(self, f) is None]
        if missing:
            raise SettingsError("invalid worker settings: " + "; ".join(f"{m}: required" for m in missing))
