"""The worker's Call against baresip, an independent SIP/TLS + SDES-SRTP implementation (libre/librem).

baresip auto-answers with ``srtp-mand`` and plays a 440 Hz tone; the call records what it hears and sends
silence frames, and baresip's own statistics (printed at hang-up) say how many of our packets it received
and decrypted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emulator.certs import CertificateAuthority
from media_worker.audio import tone_level
from media_worker.outcomes import EndReason

from .baresip_peer import TONE_HZ, BaresipPeer, available
from .conftest import place_call, srtcp_shaped

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(available() is not None, reason=available() or ""),
]

# Suites baresip 1.0.0 accepts as answerer (it has no AES_256_CM).
ANSWERED_SUITES = (
    "AES_CM_128_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_32",
    "AEAD_AES_128_GCM",
    "AEAD_AES_256_GCM",
)
# Packets still in flight when the BYE stops the other side's stream.
IN_FLIGHT = 5


@pytest.mark.parametrize("suite", ANSWERED_SUITES)
def test_srtp_media_flows_both_ways(baresip: BaresipPeer, suite: str) -> None:
    placed = place_call(baresip, baresip.ca_file, suites=[suite])
    result, tally, peer = placed.result, placed.tally, placed.peer_stats

    assert result.end_reason is EndReason.MAX_DURATION, result.detail
    assert result.connected
    assert result.sip_status == 200
    assert (result.codec, result.suite) == ("PCMU", suite)
    assert peer is not None
    # What baresip sent reached us and decrypted: no RTP packet refused, and we heard its tone.
    assert tally.rtp_refused == []
    assert result.media.packets_received > 0
    assert peer.packets_sent - IN_FLIGHT <= result.media.packets_received <= peer.packets_sent
    assert result.recording is not None
    assert tone_level(np.frombuffer(result.recording, dtype="<i2"), TONE_HZ, 8000) > 0.5
    # What we sent reached baresip and its SRTP layer accepted all of it.
    assert result.media.packets_sent > 0
    assert peer.packets_received > 0
    assert peer.errors_received == 0
    assert result.media.packets_sent - IN_FLIGHT <= peer.packets_received <= result.media.packets_sent
    # The only datagrams we refuse are RTCP that is not SRTCP for the suite: baresip sends an RTCP APP
    # "PING" in clear when its stream starts, and with the _32 suite it tags SRTCP with 32 bits.
    assert result.media.srtp_failures == len(tally.rtcp_refused)
    assert not [data for data in tally.rtcp_refused if srtcp_shaped(data, suite)]


def test_answer_with_a_suite_we_did_not_offer_is_hung_up_without_media(baresip: BaresipPeer) -> None:
    # baresip cannot do AES_256_CM; instead of 488 it answers 200 with its own AES_CM_128_HMAC_SHA1_80.
    placed = place_call(baresip, baresip.ca_file, suites=["AES_256_CM_HMAC_SHA1_80"])
    result, peer = placed.result, placed.peer_stats

    assert result.end_reason is EndReason.NO_COMMON_CRYPTO, result.detail
    assert result.sip_status == 200
    assert not result.connected
    assert result.suite is None
    assert result.media.packets_sent == 0
    assert peer is not None
    assert peer.packets_received == 0  # nothing, and in particular no plain RTP, left our side
    assert "no valid a=crypto attribute" in baresip.log()


def test_server_certificate_from_an_untrusted_ca_is_refused(baresip: BaresipPeer, tmp_path: Path) -> None:
    since = baresip.mark()
    other_ca = CertificateAuthority("unrelated CA").write_ca(tmp_path / "other-ca.pem")
    placed = place_call(baresip, other_ca, suites=["AES_CM_128_HMAC_SHA1_80"])
    result = placed.result

    assert result.end_reason is EndReason.TLS_FAILURE
    assert not result.connected
    assert result.sip_status is None
    assert "certificate" in result.detail.lower()
    assert result.media.packets_sent == 0
    assert not any("INVITE" in line for line in baresip.lines[since:])
