from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable

import pytest

from media_worker.rtp import (
    DtmfReceived,
    MediaEvent,
    MediaInactive,
    MediaReceived,
    MediaResumed,
    MediaSession,
    MediaSessionClosedError,
    RemoteByeReceived,
    RtcpReportReceived,
    RtpPacket,
    SrtpContext,
    is_rtcp,
)
from media_worker.rtp.rtcp import RtcpSrPacket, parse_rtcp

SUITE = "AES_256_CM_HMAC_SHA1_80"
ALICE_KEY = bytes(range(46))
BOB_KEY = bytes(range(100, 146))
PCMU_FRAME = b"\xff" * 160


def deterministic_urandom(seed: str) -> Callable[[int], bytes]:
    counter = 0

    def urandom(n: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < n:
            counter += 1
            out += hashlib.sha256(f"{seed}/{counter}".encode()).digest()
        return out[:n]

    return urandom


def make_pair(now: float = 100.0) -> tuple[MediaSession, MediaSession]:
    common = {"payload_type": 0, "telephone_event_payload_type": 101, "now": now}
    alice = MediaSession(
        srtp=SrtpContext(SUITE, ALICE_KEY, BOB_KEY), urandom=deterministic_urandom("alice"), **common
    )
    bob = MediaSession(
        srtp=SrtpContext(SUITE, BOB_KEY, ALICE_KEY), urandom=deterministic_urandom("bob"), **common
    )
    return alice, bob


def transfer(
    sender: MediaSession, receiver: MediaSession, now: float, drop: Callable[[int], bool] = lambda i: False
) -> list[tuple[bytes, bool]]:
    datagrams = sender.datagrams_to_send(now)
    for i, (data, rtcp) in enumerate(datagrams):
        assert is_rtcp(data) is rtcp
        if not drop(i):
            receiver.receive_datagram(data, now)
    return datagrams


def drain(session: MediaSession) -> list[MediaEvent]:
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    return events


def test_identity_comes_from_the_injected_urandom() -> None:
    alice, _ = make_pair()
    again, _ = make_pair()
    assert alice.ssrc == again.ssrc
    assert alice.cname == again.cname
    assert "00010203" not in repr(alice)
    assert repr(alice).startswith("MediaSession(ssrc=")


def test_frames_flow_and_sequence_and_timestamp_advance() -> None:
    alice, bob = make_pair()
    for i in range(50):
        alice.send_frame(bytes([i]) * 160, 100.0 + 0.02 * i)
        transfer(alice, bob, 100.0 + 0.02 * i + 0.005)
    events = drain(bob)
    assert all(isinstance(e, MediaReceived) for e in events)
    packets = [e.packet for e in events if isinstance(e, MediaReceived)]
    assert [p.payload[0] for p in packets] == list(range(50))
    assert all(p.ssrc == alice.ssrc and p.payload_type == 0 for p in packets)
    assert all((b.sequence_number - a.sequence_number) % 65536 == 1 for a, b in itertools.pairwise(packets))
    assert all((b.timestamp - a.timestamp) % 2**32 == 160 for a, b in itertools.pairwise(packets))
    assert bob.receiver is not None
    assert (bob.receiver.expected, bob.receiver.cumulative_lost, bob.receiver.jitter) == (50, 0, 0)
    assert alice.counters.packets_sent == 50
    assert alice.counters.octets_sent == 8000
    assert bob.counters.packets_received == 50


def test_loss_is_measured_and_reported_back_with_rtt() -> None:
    alice, bob = make_pair()
    now = 100.0
    for i in range(50):
        now = 100.0 + 0.02 * i
        alice.send_frame(PCMU_FRAME, now)
        transfer(alice, bob, now, drop=lambda _, i=i: i % 10 == 4)  # lose 5 of 50
    assert bob.receiver is not None
    assert bob.receiver.cumulative_lost == 5
    # Alice's first RTCP report is an SR (she has sent media); Bob gets it 10 ms later.
    timer = alice.get_timer()
    assert timer is not None
    assert 100.0 < timer <= 107.5
    alice.handle_timer(timer)
    [(_sr, is_rtcp_flag)] = transfer(alice, bob, timer + 0.010)
    assert is_rtcp_flag
    # Bob reports 300 ms after the SR arrived; Alice gets it 10 ms later: RTT = 20 ms.
    bob_timer = bob.get_timer()
    assert bob_timer is not None
    bob_report_at = max(bob_timer, timer + 0.310)  # DLSR covers however long Bob held the SR
    bob.handle_timer(bob_report_at)
    transfer(bob, alice, bob_report_at + 0.010)
    reports = [e for e in drain(alice) if isinstance(e, RtcpReportReceived)]
    assert len(reports) == 1
    assert reports[0].packets_lost == 5
    assert reports[0].fraction_lost == (5 << 8) // 50
    assert reports[0].round_trip_time == pytest.approx(0.020, abs=1e-4)
    assert alice.round_trip_time == reports[0].round_trip_time


def test_srtp_failures_are_counted_and_dropped() -> None:
    alice, bob = make_pair()
    alice.send_frame(PCMU_FRAME, 100.0)
    [(data, _)] = alice.datagrams_to_send(100.0)
    tampered = bytearray(data)
    tampered[20] ^= 0xFF
    bob.receive_datagram(bytes(tampered), 100.01)
    assert bob.counters.srtp_auth_failures == 1
    assert drain(bob) == []
    bob.receive_datagram(data, 100.01)
    bob.receive_datagram(data, 100.02)  # replay
    assert bob.counters.srtp_replays == 1
    bob.receive_datagram(b"\x00\x01junk", 100.03)  # not even SRTP
    assert bob.counters.srtp_malformed == 1
    assert len(drain(bob)) == 1  # only the genuine packet


def test_rtcp_failures_are_counted_apart_from_rtp() -> None:
    alice, bob = make_pair()
    alice.handle_timer(200.0)
    [(report, _)] = alice.datagrams_to_send(200.0)
    tampered = bytearray(report)
    tampered[-1] ^= 1
    bob.receive_datagram(bytes(tampered), 200.0)
    bob.receive_datagram(b"\x81\xcc\x00\x02PINGPING", 200.0)  # a plain RTCP APP some peers send first
    assert bob.counters.srtcp_failures == 2
    assert bob.counters.srtp_auth_failures == 0  # RTP losses stay meaningful


def test_inactivity_is_an_event_and_resumption_too() -> None:
    alice, bob = make_pair(now=100.0)
    timer = bob.get_timer()
    assert timer is not None
    assert timer <= 110.0
    bob.handle_timer(109.0)
    assert not [e for e in drain(bob) if isinstance(e, MediaInactive)]
    bob.handle_timer(110.0)
    assert [e for e in drain(bob) if isinstance(e, MediaInactive | MediaResumed)] == [
        MediaInactive(since=100.0)
    ]
    bob.handle_timer(115.0)  # reported once, not on every timer
    assert not [e for e in drain(bob) if isinstance(e, MediaInactive)]
    alice.send_frame(PCMU_FRAME, 116.0)
    transfer(alice, bob, 116.0)
    assert isinstance(drain(bob)[0], MediaResumed)


def test_dtmf_replaces_audio_and_arrives_once() -> None:
    alice, bob = make_pair()
    alice.send_dtmf("#", duration=800)
    sent = []
    for i in range(8):
        alice.send_frame(PCMU_FRAME, 100.0 + 0.02 * i)
        sent.extend(data for data, _ in alice.datagrams_to_send(0.0))
    plain = [RtpPacket.parse(SrtpContext(SUITE, BOB_KEY, ALICE_KEY).unprotect_rtp(d)) for d in sent]
    dtmf, audio = plain[:7], plain[7]
    assert [p.payload_type for p in dtmf] == [101] * 7
    assert [p.marker for p in dtmf] == [True] + [False] * 6
    assert len({p.timestamp for p in dtmf}) == 1  # one event, one timestamp (RFC 4733 §2.5.1.1)
    assert [p.payload[1] & 0x80 for p in dtmf].count(0x80) == 3  # three end packets
    assert audio.payload_type == 0
    assert audio.timestamp == (dtmf[0].timestamp + 7 * 160) % 2**32
    for data in sent:
        bob.receive_datagram(data, 100.2)
    assert [e for e in drain(bob) if isinstance(e, DtmfReceived)] == [DtmfReceived(digit="#", duration=800)]


def test_dtmf_needs_a_negotiated_payload_type() -> None:
    session = MediaSession(srtp=SrtpContext(SUITE, ALICE_KEY, BOB_KEY), payload_type=0, now=0.0)
    with pytest.raises(ValueError, match="telephone-event"):
        session.send_dtmf("1")


def test_skip_frames_advances_the_timestamp() -> None:
    alice, bob = make_pair()
    alice.send_frame(PCMU_FRAME, 100.0)
    alice.skip_frames(3)
    alice.send_frame(PCMU_FRAME, 100.08)
    transfer(alice, bob, 100.09)
    first, second = (e.packet for e in drain(bob) if isinstance(e, MediaReceived))
    assert (second.timestamp - first.timestamp) % 2**32 == 4 * 160
    assert (second.sequence_number - first.sequence_number) % 65536 == 1


def test_bye_reaches_the_peer_and_closes_the_session() -> None:
    alice, bob = make_pair()
    alice.bye(101.0, reason="meeting ended")
    transfer(alice, bob, 101.0)
    assert RemoteByeReceived(ssrc=alice.ssrc, reason="meeting ended") in drain(bob)
    assert alice.get_timer() is None
    with pytest.raises(MediaSessionClosedError):
        alice.send_frame(PCMU_FRAME, 101.02)
    alice.bye(101.1)  # idempotent
    assert alice.datagrams_to_send(101.1) == []


def test_receiver_report_when_nothing_was_sent() -> None:
    alice, bob = make_pair()
    bob.handle_timer(107.5)  # the first report is due within 0.5-1.5 x 5 s
    [(data, rtcp)] = bob.datagrams_to_send(107.5)
    plain = SrtpContext(SUITE, ALICE_KEY, BOB_KEY).unprotect_rtcp(data)
    assert rtcp
    assert plain[1] == 201
    alice.receive_datagram(data, 107.5)
    assert drain(alice) == []  # an RR without a block about us carries no report event


def test_protect_frame_hands_back_the_packet_send_frame_would_queue() -> None:
    alice, bob = make_pair()
    twin, _ = make_pair()  # same keys and identity: the same packets, built the queued way
    for i in range(3):
        now = 100.0 + 0.02 * i
        datagram = alice.protect_frame(PCMU_FRAME, now)
        assert datagram is not None
        twin.send_frame(PCMU_FRAME, now)
        ((queued, rtcp),) = twin.datagrams_to_send(now)
        assert bytes(datagram) == queued
        assert not rtcp
        bob.receive_datagram(bytes(datagram), now)
    assert bob.counters.packets_received == 3
    assert alice.counters.packets_sent == twin.counters.packets_sent == 3


def test_receive_buffered_equals_receive_datagram() -> None:
    alice, bob = make_pair()
    _, bob_twin = make_pair()
    for i in range(5):
        alice.send_frame(PCMU_FRAME, 100.0 + 0.02 * i)
    alice.send_dtmf("5", duration=160)
    for i in range(5, 8):
        alice.send_frame(PCMU_FRAME, 100.0 + 0.02 * i)
    alice.handle_timer(200.0)  # a sender report too, which takes the RTCP branch
    for data, _ in alice.datagrams_to_send(200.0):
        bob.receive_datagram(data, 200.0)
        bob_twin.receive_buffer[: len(data)] = data
        bob_twin.receive_buffered(len(data), 200.0)
    assert bob.counters == bob_twin.counters
    assert drain(bob) == drain(bob_twin)
    assert bob.counters.packets_received == 8


def test_sender_report_timestamp_follows_the_media_clock_through_dtmf() -> None:
    """The SR's RTP timestamp is the media clock's at ``now`` (RFC 3550 §6.4.1), even when the last packets
    were DTMF, whose timestamps stay at the event's start (RFC 4733 §2.5.1.1)."""
    alice, _ = make_pair()
    first = alice.protect_frame(PCMU_FRAME, 100.0)
    assert first is not None
    peer = SrtpContext(SUITE, BOB_KEY, ALICE_KEY)
    first_timestamp = RtpPacket.parse(peer.unprotect_rtp(bytes(first))).timestamp
    alice.send_dtmf("1", duration=800)
    for i in range(1, 6):
        alice.send_frame(PCMU_FRAME, 100.0 + 0.02 * i)
    alice.datagrams_to_send(0.0)
    due = alice.get_timer()
    assert due is not None
    alice.handle_timer(due)
    reports = [data for data, rtcp in alice.datagrams_to_send(due) if rtcp]
    (sender_report,) = [
        packet
        for data in reports
        for packet in parse_rtcp(peer.unprotect_rtcp(data))
        if isinstance(packet, RtcpSrPacket)
    ]
    elapsed = int((due - 100.0) * 8000)  # 8 kHz media clock since the first frame
    assert sender_report.rtp_timestamp == (first_timestamp + elapsed) % 2**32
