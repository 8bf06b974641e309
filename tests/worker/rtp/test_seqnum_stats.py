from __future__ import annotations

import pytest

from media_worker.rtp import (
    ReceiverStatistics,
    ntp_middle32,
    ntp_timestamp,
    round_trip_time,
    uint16_add,
    uint16_diff,
    uint16_gt,
    uint16_gte,
    uint32_add,
    uint32_diff,
    uint32_gt,
    uint32_gte,
)


def test_uint16_wrap() -> None:
    assert uint16_add(65535, 1) == 0
    assert uint16_add(0, -1) == 65535
    assert uint16_diff(0, 65535) == 1
    assert uint16_diff(65535, 0) == -1
    assert uint16_gt(0, 65535)
    assert not uint16_gt(65535, 0)
    assert uint16_gte(5, 5)
    assert not uint16_gt(5, 5)
    assert uint16_gt(32767, 0)
    assert not uint16_gt(32768, 0)


def test_uint32_wrap() -> None:
    assert uint32_add(0xFFFF_FFFF, 2) == 1
    assert uint32_diff(1, 0xFFFF_FFFF) == 2
    assert uint32_gt(1, 0xFFFF_FFFF)
    assert not uint32_gt(0xFFFF_FFFF, 1)
    assert uint32_gte(7, 7)


def test_jitter_on_a_known_arrival_sequence() -> None:
    # RFC 3550 §A.8 by hand, 8 kHz, 160 samples per packet:
    #   p1 arrives 20 ms after p0: D = 160 - 160 = 0          J = 0
    #   p2 arrives 30 ms after p1: D = 240 - 160 = 80         J = 0 + (80 - 0)/16 = 5
    #   p3 arrives 10 ms after p2: D = 80 - 160 = -80         J = 5 + (80 - 5)/16 = 9.6875
    #   p4 arrives 20 ms after p3: D = 0                      J = 9.6875 * 15/16 = 9.08...
    stats = ReceiverStatistics(ssrc=1, clock_rate=8000)
    expected = [0, 0, 5, 9, 9]
    for i, (arrival, want) in enumerate(zip([0.0, 0.020, 0.050, 0.060, 0.080], expected, strict=True)):
        assert stats.add(100 + i, 160 * i, arrival)
        assert stats.jitter == want


def test_jitter_survives_rtp_timestamp_wrap() -> None:
    stats = ReceiverStatistics(ssrc=1, clock_rate=8000)
    stats.add(1, 0xFFFF_FFFF - 79, 0.0)
    stats.add(2, 80, 0.020)  # 160 samples later across the wrap, on time
    assert stats.jitter == 0


def test_loss_and_fraction_lost_across_sequence_wrap() -> None:
    stats = ReceiverStatistics(ssrc=1, clock_rate=8000)
    received = [
        s for s in [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3, 4, 5] if s not in (65534, 2)
    ]
    for i, seq in enumerate(received):
        stats.add(seq, 160 * i, 0.02 * i)
    assert stats.cycles == 65536
    assert stats.extended_highest_sequence == 65541
    assert stats.expected == 12
    assert stats.received == 10
    assert stats.cumulative_lost == 2
    assert stats.take_fraction_lost() == (2 << 8) // 12  # 42/256
    for seq in (6, 7, 8, 9):
        stats.add(seq, 0, 1.0)
    assert stats.take_fraction_lost() == 0  # nothing lost in the new interval
    assert stats.cumulative_lost == 2


def test_duplicates_make_cumulative_loss_negative_and_fraction_zero() -> None:
    stats = ReceiverStatistics(ssrc=1, clock_rate=8000)
    for seq in (1, 2, 3, 3, 3):
        stats.add(seq, 0, 0.0)
    assert stats.cumulative_lost == -2
    assert stats.take_fraction_lost() == 0


def test_reordered_packet_does_not_move_the_highest_sequence() -> None:
    stats = ReceiverStatistics(ssrc=1, clock_rate=8000)
    for seq in (10, 12, 11):
        stats.add(seq, 0, 0.0)
    assert stats.extended_highest_sequence == 12
    assert stats.cumulative_lost == 0


def test_sender_restart_needs_two_sequential_packets() -> None:
    stats = ReceiverStatistics(ssrc=1, clock_rate=8000)
    stats.add(100, 0, 0.0)
    assert not stats.add(40000, 0, 0.02)  # a huge jump is held back ...
    assert stats.add(40001, 160, 0.04)  # ... until the next one confirms the restart (RFC 3550 §A.1)
    assert stats.base_seq == 40001
    assert stats.expected == 1


def test_rtt_from_lsr_and_dlsr() -> None:
    offset = 1_700_000_000.0 + 2_208_988_800
    sr_sent = ntp_timestamp(100.0 + offset)
    lsr = ntp_middle32(sr_sent)
    dlsr = int(0.25 * 65536)  # the peer held our SR for 250 ms before reporting
    rtt = round_trip_time(ntp_timestamp(100.75 + offset), lsr, dlsr)
    assert rtt == pytest.approx(0.5, abs=2 / 65536)
    assert round_trip_time(ntp_timestamp(100.75 + offset), 0, dlsr) is None  # no SR seen yet
    assert round_trip_time(ntp_timestamp(99.0 + offset), lsr, dlsr) is None  # negative: clock trouble


def test_rtt_across_the_middle32_wrap() -> None:
    lsr = 0xFFFF_FF00
    arrival = (0x0000_0100 + (1 << 32)) << 16  # middle 32 bits wrapped past zero
    assert round_trip_time(arrival, lsr, 0) == pytest.approx(0x200 / 65536)


def test_report_block_carries_lsr_and_dlsr() -> None:
    stats = ReceiverStatistics(ssrc=0xABCD, clock_rate=8000)
    stats.add(1, 0, 10.0)
    stats.on_sender_report(0x1234_5678_9ABC_DEF0, 10.0)
    block = stats.report_block(10.5)
    assert block.ssrc == 0xABCD
    assert block.lsr == 0x5678_9ABC
    assert block.dlsr == 32768  # 0.5 s in 1/65536 s
    assert block.highest_sequence == 1
    assert block.packets_lost == 0
