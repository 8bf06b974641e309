"""Receiver statistics for one remote source (RFC 3550 §6.4, §A.1, §A.3, §A.8) and NTP/RTT arithmetic.

All arithmetic follows the RFC appendix: sequence numbers are extended with a cycle count, loss is
``expected - received`` (so duplicates can make it negative), jitter is kept in RTP timestamp units and
smoothed with gain 1/16, and RTT uses the middle 32 bits of NTP timestamps (units of 1/65536 s).
"""

from __future__ import annotations

from typing import Final

from .rtcp import RtcpReportBlock

__all__ = [
    "NTP_UNIX_EPOCH_OFFSET",
    "ReceiverStatistics",
    "ntp_middle32",
    "ntp_timestamp",
    "round_trip_time",
]

NTP_UNIX_EPOCH_OFFSET: Final = 2_208_988_800
"""Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01)."""

_SEQ_MOD: Final = 1 << 16
_MAX_DROPOUT: Final = 3000  # RFC 3550 §A.1 recommended values
_MAX_MISORDER: Final = 100
_LOST_MIN: Final = -(1 << 23)
_LOST_MAX: Final = (1 << 23) - 1


def ntp_timestamp(seconds: float) -> int:
    """64-bit NTP timestamp (32.32 fixed point) for ``seconds`` since the NTP epoch."""
    return int(seconds * (1 << 32)) & 0xFFFF_FFFF_FFFF_FFFF


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp, as carried in LSR (RFC 3550 §6.4.1)."""
    return (ntp >> 16) & 0xFFFF_FFFF


def round_trip_time(arrival_ntp: int, lsr: int, dlsr: int) -> float | None:
    """Round-trip time in seconds from a report block that arrived at NTP time ``arrival_ntp``.

    RFC 3550 §6.4.1: RTT = A - LSR - DLSR in units of 1/65536 s, all modulo 2^32. Returns None when the
    peer has not yet seen one of our SRs (LSR = 0) or when the result is negative (clock trouble).
    """
    if lsr == 0:
        return None
    rtt = (ntp_middle32(arrival_ntp) - lsr - dlsr) & 0xFFFF_FFFF
    if rtt >= 1 << 31:
        return None
    return rtt / 65536


class ReceiverStatistics:
    """Reception state for one remote SSRC; feed every authenticated packet to :meth:`add`."""

    __slots__ = (
        "_bad_seq",
        "_expected_prior",
        "_jitter",
        "_last_sr",
        "_last_sr_arrival",
        "_received_prior",
        "_started",
        "_transit",
        "base_seq",
        "clock_rate",
        "cycles",
        "max_seq",
        "received",
        "ssrc",
    )

    def __init__(self, ssrc: int, clock_rate: int) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.base_seq = 0
        self.max_seq = 0
        self.cycles = 0
        self.received = 0
        self._started = False
        self._bad_seq = _SEQ_MOD + 1  # "no candidate restart"
        self._expected_prior = 0
        self._received_prior = 0
        self._jitter = 0.0
        self._transit = 0.0
        """Relative transit time of the previous packet, in timestamp units (§A.8); set by the first."""
        self._last_sr = 0
        self._last_sr_arrival = 0.0

    def _init_seq(self, seq: int) -> None:  # RFC 3550 §A.1 init_seq()
        self.base_seq = seq
        self.max_seq = seq
        self._bad_seq = _SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self._received_prior = 0
        self._expected_prior = 0

    def add(self, seq: int, timestamp: int, arrival: float) -> bool:
        """Account for one packet; returns False if it was held back as a possible sequence restart.

        ``arrival`` is the receive time in seconds (any monotonic origin). Probation (§A.1
        MIN_SEQUENTIAL) is not applied: SRTP authentication already vouches for the source.
        Called for every received packet, so the common case (next in order) reads each slot once.
        """
        # RFC 3550 §A.8: transit = arrival - timestamp in timestamp units, D = transit - previous transit,
        # J += (|D| - J) / 16.
        transit = arrival * self.clock_rate - timestamp
        max_seq = self.max_seq
        udelta = (seq - max_seq) & 0xFFFF  # RFC 3550 §A.1 udelta, modulo RTP_SEQ_MOD
        if udelta < _MAX_DROPOUT and self._started:  # in order, with permissible gap: the common case
            if seq < max_seq:  # wrapped (§A.1)
                self.cycles += _SEQ_MOD
            self.max_seq = seq
        elif not self._started or udelta <= _SEQ_MOD - _MAX_MISORDER:
            if self._started and seq != self._bad_seq:  # a very large jump: wait for the next packet
                self._bad_seq = (seq + 1) % _SEQ_MOD
                return False
            # The first packet, or two sequential packets after a jump: the sender (re)started.
            self._started = True
            self._init_seq(seq)
            self.received = 1
            self._transit = transit  # jitter resumes from the next packet
            return True
        # else: duplicate or reordered packet, counted but max_seq unchanged
        self.received += 1
        d = abs(transit - self._transit)
        self._transit = transit
        if d > 0x8000_0000:  # the 32-bit timestamp wrapped between the two packets
            d = 0x1_0000_0000 - d
        self._jitter += (d - self._jitter) / 16
        return True

    @property
    def extended_highest_sequence(self) -> int:
        """Highest sequence number seen, extended with the wrap count (§A.3 ``extended_max``)."""
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        """Packets expected so far (§A.3)."""
        return self.extended_highest_sequence - self.base_seq + 1 if self.received else 0

    @property
    def cumulative_lost(self) -> int:
        """Expected minus received, clamped to the signed 24-bit field of a report block (§6.4.1)."""
        return max(_LOST_MIN, min(_LOST_MAX, self.expected - self.received))

    @property
    def jitter(self) -> int:
        """Interarrival jitter estimate in RTP timestamp units (§A.8)."""
        return int(self._jitter)

    def take_fraction_lost(self) -> int:
        """Fraction lost since the previous call, 8-bit fixed point (§A.3); starts a new interval."""
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            return 0
        return (lost_interval << 8) // expected_interval

    def on_sender_report(self, ntp: int, arrival: float) -> None:
        """Remember the source's latest SR so our next report can carry LSR/DLSR (§6.4.1)."""
        self._last_sr = ntp_middle32(ntp)
        self._last_sr_arrival = arrival

    def report_block(self, now: float) -> RtcpReportBlock:
        """A reception report for this source as of ``now``; starts a new fraction-lost interval."""
        fraction = self.take_fraction_lost()
        dlsr = int((now - self._last_sr_arrival) * 65536) & 0xFFFF_FFFF if self._last_sr else 0
        return RtcpReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            packets_lost=self.cumulative_lost,
            highest_sequence=self.extended_highest_sequence & 0xFFFF_FFFF,
            jitter=self.jitter,
            lsr=self._last_sr,
            dlsr=dlsr,
        )
