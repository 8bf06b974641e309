"""Protocol-core throughput: SIP INVITE parse+serialise, SDP offer/answer, SRTP protect+unprotect per suite.

Each figure comes with a reference measured in the same run, so the ratio survives a noisy or slow machine:

- INVITE: ``parse_message`` + ``bytes()`` of the seed-shaped INVITE against a bare ``split(b"\\r\\n")`` and
  dict build of the same bytes (a lower bound for any parser that looks at every header);
- SRTP: :class:`SrtpContext` protect+unprotect of a 172-byte G.711 packet, per suite, against raw pylibsrtp
  sessions running AES_CM_128_HMAC_SHA1_80 with the same policy.

Timing is best-of-N with ``time.perf_counter``; nothing here asserts on time.

    python benchmarks/protocol.py [--quick] [--json] [--repeat N]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a plain script from the repository root: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import pylibsrtp

from media_worker.negotiation import answer_offer, build_offer, process_answer
from media_worker.rtp.srtp import SrtpContext
from media_worker.rtp.suites import SUITES
from media_worker.sip import parse_message

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
SEED_INVITE: Final = REPO_ROOT / "tests" / "fixtures" / "sip" / "seed_invite.sip"
REFERENCE_SUITE: Final = "AES_CM_128_HMAC_SHA1_80"
RTP_PAYLOAD_BYTES: Final = 160  # 20 ms of G.711 at 8 kHz
RTP_HEADER: Final = struct.Struct("!BBHII")  # V=2, PT, seq, timestamp, SSRC (RFC 3550 §5.1)
MAX_PACKETS_PER_RUN: Final = 60_000  # stay inside one 16-bit sequence cycle per fresh SRTP context
SUITE_NAMES: Final = tuple(SUITES)

Batch = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Counts:
    """Operations per timed run and how many runs to take the best of."""

    invite: int
    sdp: int
    srtp: int
    repeat: int


FULL: Final = Counts(invite=5_000, sdp=500, srtp=20_000, repeat=7)
QUICK: Final = Counts(invite=20, sdp=5, srtp=50, repeat=2)


def best_seconds_per_op(make_batch: Callable[[int], Batch], *, number: int, repeat: int) -> float:
    """Best of ``repeat`` runs of ``number`` operations, in seconds per operation.

    ``make_batch(number)`` does its set-up (fresh sessions, packets) outside the timed region and returns
    the callable that performs ``number`` operations.
    """
    best = float("inf")
    for _ in range(repeat):
        batch = make_batch(number)
        start = time.perf_counter()
        batch()
        best = min(best, time.perf_counter() - start)
    return best / number


# -- SIP --


def load_seed_invite() -> bytes:
    """The seed-shaped INVITE fixture (stored with LF) with SIP's CRLF line ends."""
    return SEED_INVITE.read_bytes().replace(b"\n", b"\r\n")


def invite_parse_serialise(data: bytes) -> Callable[[int], Batch]:
    def make(number: int) -> Batch:
        def batch() -> None:
            for _ in range(number):
                bytes(parse_message(data))

        return batch

    return make


def invite_parse_only(data: bytes) -> Callable[[int], Batch]:
    def make(number: int) -> Batch:
        def batch() -> None:
            for _ in range(number):
                parse_message(data)

        return batch

    return make


def split_reference(data: bytes) -> Callable[[int], Batch]:
    """Lower bound: cut the head into lines and build a name -> value dict, no validation at all."""

    def make(number: int) -> Batch:
        def batch() -> None:
            for _ in range(number):
                head, _, _body = data.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                fields: dict[bytes, bytes] = {}
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    fields[name.strip()] = value.strip()

        return batch

    return make


# -- SDP --


def offer_answer() -> Callable[[int], Batch]:
    codecs = ("PCMU", "PCMA")

    def make(number: int) -> Batch:
        def batch() -> None:
            for index in range(number):
                offer = build_offer(
                    local_address="192.0.2.10",
                    rtp_port=40_000,
                    codecs=codecs,
                    suites=SUITE_NAMES,
                    session_id=index + 1,
                    session_version=1,
                    urandom=os.urandom,
                )
                answer, _ = answer_offer(
                    str(offer),
                    local_address="198.51.100.7",
                    rtp_port=50_000,
                    codecs=codecs,
                    suites=SUITE_NAMES,
                    urandom=os.urandom,
                    session_id=index + 2,
                )
                process_answer(offer, answer)

        return batch

    return make


# -- SRTP --


def rtp_packets(count: int) -> list[bytes]:
    """``count`` 172-byte PCMU packets with consecutive sequence numbers (fresh ones defeat replay checks)."""
    payload = bytes(range(RTP_PAYLOAD_BYTES))
    return [
        RTP_HEADER.pack(0x80, 0, seq, seq * RTP_PAYLOAD_BYTES, 0x1234ABCD) + payload
        for seq in range(1, count + 1)
    ]


def srtp_round_trip(suite: str) -> Callable[[int], Batch]:
    key_salt_length = SUITES[suite].key_salt_length

    def make(number: int) -> Batch:
        ours, theirs = os.urandom(key_salt_length), os.urandom(key_salt_length)
        sender, receiver = SrtpContext(suite, ours, theirs), SrtpContext(suite, theirs, ours)
        packets = rtp_packets(number)

        def batch() -> None:
            for packet in packets:
                receiver.unprotect_rtp(sender.protect_rtp(packet))

        return batch

    return make


def pylibsrtp_reference() -> Callable[[int], Batch]:
    """Raw pylibsrtp sessions for AES_CM_128_HMAC_SHA1_80, configured as SrtpContext configures its own."""

    def session(key_salt: bytes, ssrc_type: int) -> pylibsrtp.Session:
        policy = pylibsrtp.Policy(
            key=key_salt, ssrc_type=ssrc_type, srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80
        )
        policy.allow_repeat_tx = True
        policy.window_size = 1024
        return pylibsrtp.Session(policy=policy)

    def make(number: int) -> Batch:
        key_salt = os.urandom(SUITES[REFERENCE_SUITE].key_salt_length)
        sender = session(key_salt, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        receiver = session(key_salt, pylibsrtp.Policy.SSRC_ANY_INBOUND)
        packets = rtp_packets(number)

        def batch() -> None:
            for packet in packets:
                receiver.unprotect(sender.protect(packet))

        return batch

    return make


# -- driver --


def measure(counts: Counts) -> dict[str, object]:
    """Every figure and ratio, as a JSON-ready dict."""
    repeat = counts.repeat
    invite = load_seed_invite()
    ours = best_seconds_per_op(invite_parse_serialise(invite), number=counts.invite, repeat=repeat)
    parse_only = best_seconds_per_op(invite_parse_only(invite), number=counts.invite, repeat=repeat)
    bare = best_seconds_per_op(split_reference(invite), number=counts.invite, repeat=repeat)
    sdp = best_seconds_per_op(offer_answer(), number=counts.sdp, repeat=repeat)
    packets = min(counts.srtp, MAX_PACKETS_PER_RUN)
    reference = best_seconds_per_op(pylibsrtp_reference(), number=packets, repeat=repeat)
    suites = {}
    for suite in SUITE_NAMES:
        per_packet = best_seconds_per_op(srtp_round_trip(suite), number=packets, repeat=repeat)
        suites[suite] = {"us_per_packet": per_packet * 1e6, "ratio_to_reference": per_packet / reference}
    return {
        "config": {
            "repeat": repeat,
            "invite_iterations": counts.invite,
            "sdp_iterations": counts.sdp,
            "srtp_packets": packets,
            "invite_bytes": len(invite),
            "rtp_packet_bytes": RTP_HEADER.size + RTP_PAYLOAD_BYTES,
            "python": sys.version.split()[0],
        },
        "invite": {
            "parse_serialise_per_s": 1 / ours,
            "parse_serialise_us": ours * 1e6,
            "parse_per_s": 1 / parse_only,
            "reference_split_dict_per_s": 1 / bare,
            "ratio_to_reference": ours / bare,
        },
        "sdp": {"offer_answer_per_s": 1 / sdp, "offer_answer_us": sdp * 1e6},
        "srtp": {
            "reference": {"suite": REFERENCE_SUITE, "implementation": "pylibsrtp.Session"},
            "reference_us_per_packet": reference * 1e6,
            "suites": suites,
        },
    }


def render(results: dict[str, object]) -> str:
    """The figures as a short human-readable report."""
    invite = _section(results, "invite")
    sdp = _section(results, "sdp")
    srtp = _section(results, "srtp")
    config = _section(results, "config")
    suites = srtp["suites"]
    assert isinstance(suites, dict)
    lines = [
        f"best of {config['repeat']} runs; INVITE {config['invite_bytes']} B, "
        f"RTP {config['rtp_packet_bytes']} B, Python {config['python']}",
        "",
        f"SIP INVITE parse+serialise  {invite['parse_serialise_per_s']:>12,.0f} /s"
        f"  ({invite['parse_serialise_us']:.1f} µs)",
        f"SIP INVITE parse only       {invite['parse_per_s']:>12,.0f} /s",
        f"  reference split+dict      {invite['reference_split_dict_per_s']:>12,.0f} /s"
        f"  -> ours is {invite['ratio_to_reference']:.1f}x the reference time",
        f"SDP offer/answer/process    {sdp['offer_answer_per_s']:>12,.0f} /s"
        f"  ({sdp['offer_answer_us']:.1f} µs)",
        "",
        f"SRTP protect+unprotect, µs per packet (reference: raw pylibsrtp {REFERENCE_SUITE}"
        f" {srtp['reference_us_per_packet']:.2f} µs)",
    ]
    for suite, figures in suites.items():
        lines.append(
            f"  {suite:<26} {figures['us_per_packet']:>8.2f} µs"
            f"   x{figures['ratio_to_reference']:.2f} reference"
        )
    return "\n".join(lines)


def _section(results: dict[str, object], name: str) -> dict[str, object]:
    section = results[name]
    assert isinstance(section, dict)
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny iteration counts (smoke test)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--repeat", type=int, default=None, help="runs to take the best of")
    args = parser.parse_args(argv)
    counts = QUICK if args.quick else FULL
    if args.repeat is not None:
        counts = Counts(counts.invite, counts.sdp, counts.srtp, max(1, args.repeat))
    results = measure(counts)
    print(json.dumps(results, indent=2) if args.json else render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
