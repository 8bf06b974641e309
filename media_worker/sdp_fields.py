"""The value types of an SDP description (RFC 8866 §5): origin, connection, bandwidth, timing, attributes.

Split from ``sdp.py`` so each module reads whole; import them from ``media_worker.sdp``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Attribute",
    "Bandwidth",
    "Connection",
    "Direction",
    "Origin",
    "RtcpAttribute",
    "RtpMap",
    "SdpError",
    "Timing",
    "attribute_value",
    "direction_of",
]


class SdpError(ValueError):
    """The text is not a session description we can read. The message never quotes line values."""


class Direction(StrEnum):
    """Media direction attributes (RFC 3264 §5.1), from the point of view of whoever wrote them."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def from_flags(cls, *, send: bool, receive: bool) -> Direction:
        if send:
            return cls.SENDRECV if receive else cls.SENDONLY
        return cls.RECVONLY if receive else cls.INACTIVE

    def reversed(self) -> Direction:
        """The same stream seen from the other end: sendonly ↔ recvonly (RFC 3264 §6.1)."""
        return Direction.from_flags(send=self.receives, receive=self.sends)


@dataclass(frozen=True, slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`` (RFC 8866 §5.2)."""

    username: str
    session_id: str
    """Opaque numeric string; kept as text so leading zeros and 64-bit+ values survive."""
    session_version: int
    network_type: str
    address_type: str
    address: str

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.network_type} {self.address_type} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """``c=<nettype> <addrtype> <connection-address>`` (RFC 8866 §5.7)."""

    network_type: str
    address_type: str
    address: str

    def __str__(self) -> str:
        return f"{self.network_type} {self.address_type} {self.address}"


@dataclass(frozen=True, slots=True)
class Bandwidth:
    """``b=<bwtype>:<bandwidth>`` (RFC 8866 §5.8)."""

    type: str
    value: int

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


@dataclass(frozen=True, slots=True)
class Timing:
    """``t=<start> <stop>`` and its ``r=`` repeat lines, kept as text (RFC 8866 §5.9, §5.10)."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Attribute:
    """``a=<name>`` (a flag: value None) or ``a=<name>:<value>`` (RFC 8866 §5.13); the value verbatim."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"

    def __repr__(self) -> str:
        # a=crypto (RFC 4568) and a=key-mgmt carry keys: keep them out of reprs and logs.
        shown = "<redacted>" if self.name in ("crypto", "key-mgmt") else repr(self.value)
        return f"Attribute(name={self.name!r}, value={shown})"


@dataclass(frozen=True, slots=True)
class RtpMap:
    """``a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`` (RFC 8866 §6.6)."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    def __str__(self) -> str:
        tail = "" if self.channels is None else f"/{self.channels}"
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{tail}"


@dataclass(frozen=True, slots=True)
class RtcpAttribute:
    """``a=rtcp:<port> [<nettype> <addrtype> <address>]`` (RFC 3605 §2.1)."""

    port: int
    connection: Connection | None = None

    def __str__(self) -> str:
        return str(self.port) if self.connection is None else f"{self.port} {self.connection}"


def attribute_value(attributes: tuple[Attribute, ...], name: str) -> str | None:
    return next((a.value for a in attributes if a.name == name and a.value is not None), None)


def direction_of(attributes: tuple[Attribute, ...]) -> Direction | None:
    names = {d.value for d in Direction}
    return next((Direction(a.name) for a in attributes if a.name in names and a.value is None), None)
