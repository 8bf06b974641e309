"""Sans-I/O media plane: RTP/RTCP codecs, SRTP, statistics, DTMF, the media clock and MediaSession."""

from .dtmf import DTMF_DIGITS, DtmfDetector, TelephoneEvent, dtmf_events
from .events import (
    DtmfReceived,
    MediaEvent,
    MediaInactive,
    MediaReceived,
    MediaResumed,
    RemoteByeReceived,
    RtcpReportReceived,
)
from .pacer import MediaClock
from .packet import RtpExtension, RtpPacket, RtpParseError, is_rtcp
from .rtcp import (
    RtcpByePacket,
    RtcpPacket,
    RtcpReportBlock,
    RtcpRrPacket,
    RtcpSdesChunk,
    RtcpSdesPacket,
    RtcpSrPacket,
    RtcpUnknownPacket,
    parse_rtcp,
    serialize_rtcp,
)
from .seqnum import (
    uint16_add,
    uint16_diff,
    uint16_gt,
    uint16_gte,
    uint32_add,
    uint32_diff,
    uint32_gt,
    uint32_gte,
)
from .session import MediaCounters, MediaSession, MediaSessionClosedError
from .srtp import SrtpContext, SrtpError, SrtpFailure, SrtpUnsupportedError
from .stats import ReceiverStatistics, ntp_middle32, ntp_timestamp, round_trip_time
from .suites import SUITES, SrtpSuite, suite_by_name

__all__ = [
    "DTMF_DIGITS",
    "SUITES",
    "DtmfDetector",
    "DtmfReceived",
    "MediaClock",
    "MediaCounters",
    "MediaEvent",
    "MediaInactive",
    "MediaReceived",
    "MediaResumed",
    "MediaSession",
    "MediaSessionClosedError",
    "ReceiverStatistics",
    "RemoteByeReceived",
    "RtcpByePacket",
    "RtcpPacket",
    "RtcpReportBlock",
    "RtcpReportReceived",
    "RtcpRrPacket",
    "RtcpSdesChunk",
    "RtcpSdesPacket",
    "RtcpSrPacket",
    "RtcpUnknownPacket",
    "RtpExtension",
    "RtpPacket",
    "RtpParseError",
    "SrtpContext",
    "SrtpError",
    "SrtpFailure",
    "SrtpSuite",
    "SrtpUnsupportedError",
    "TelephoneEvent",
    "dtmf_events",
    "is_rtcp",
    "ntp_middle32",
    "ntp_timestamp",
    "parse_rtcp",
    "round_trip_time",
    "serialize_rtcp",
    "suite_by_name",
    "uint16_add",
    "uint16_diff",
    "uint16_gt",
    "uint16_gte",
    "uint32_add",
    "uint32_diff",
    "uint32_gt",
    "uint32_gte",
]
