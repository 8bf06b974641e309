"""Runs baresip as an independent SIP/TLS + SDES-SRTP user agent on 127.0.0.1 (auto-answer, srtp-mand).

baresip 1.0.0 (Debian ``baresip-core``) is a separate implementation of SIP, SDP and SRTP (libre/librem), so a
call that works against it shows interoperability rather than agreement with ourselves. Its certificate
comes from a CA generated for the test; its audio source is a 440 Hz tone (``ausine``) and it prints RTP
statistics at hang-up.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from emulator.certs import CertificateAuthority

BARESIP = shutil.which("baresip")
MODULES = Path("/usr/lib/baresip/modules")
TONE_HZ = 440.0


def available() -> str | None:
    """None when baresip can run here, else the reason the interop tests skip."""
    if BARESIP is None:
        return "baresip is not installed (apt-get install baresip-core; make test installs it as root)"
    if not (MODULES / "srtp.so").exists():
        return f"baresip modules missing in {MODULES}"
    return None


def _free_port_pair() -> int:
    # baresip listens for TLS on sip_listen's port + 1; find a port whose successor is free too.
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair on 127.0.0.1")


@dataclass(frozen=True, slots=True)
class RtpStats:
    """The audio statistics baresip prints when a call ends (``rtp_stats yes``)."""

    packets_sent: int
    packets_received: int
    errors_sent: int
    errors_received: int


_STATS_ROW = re.compile(r"^(packets|errors):\s+(\d+)\s+(\d+)\s*$")


def parse_rtp_stats(lines: list[str]) -> RtpStats | None:
    """The first complete statistics block in ``lines`` ("Transmit:"/"Receive:" header, then rows)."""
    for start, line in enumerate(lines):
        if "Transmit:" not in line or "Receive:" not in line:
            continue
        rows: dict[str, tuple[int, int]] = {}
        for row in lines[start + 1 : start + 6]:
            match = _STATS_ROW.match(row.strip())
            if match:
                rows[match.group(1)] = (int(match.group(2)), int(match.group(3)))
        if "packets" in rows and "errors" in rows:
            return RtpStats(*rows["packets"], *rows["errors"])
    return None


@dataclass
class BaresipPeer:
    uri: str
    ca_file: Path
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def log(self) -> str:
        with self.changed:
            return "\n".join(self.lines)

    def mark(self) -> int:
        """A position in the log; later waits look only at lines after it."""
        with self.changed:
            return len(self.lines)

    def wait_for(
        self, found: Callable[[list[str]], object], *, since: int = 0, timeout_s: float = 10.0
    ) -> object:
        """Wait for ``found(lines since the mark)`` to be truthy (returned) or baresip to exit."""
        with self.changed:
            result: object = None

            def ready() -> bool:
                nonlocal result
                result = found(self.lines[since:])
                return bool(result) or self.process.poll() is not None

            self.changed.wait_for(ready, timeout=timeout_s)
            return result

    def stop(self) -> None:
        """Stop baresip (safe to call twice); its connections close with it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def rtp_stats(self, *, since: int, timeout_s: float = 10.0) -> RtpStats:
        """The statistics of the first call that ended after ``since``."""
        stats = self.wait_for(parse_rtp_stats, since=since, timeout_s=timeout_s)
        if not isinstance(stats, RtpStats):
            raise AssertionError(f"baresip printed no RTP statistics within {timeout_s} s:\n{self.log()}")
        return stats


@contextmanager
def baresip_uas(directory: Path, *, rtp_ports: tuple[int, int] = (41000, 41099)) -> Iterator[BaresipPeer]:
    """Start an auto-answering baresip; yields once it reports ready; stops it afterwards."""
    assert BARESIP is not None
    ca = CertificateAuthority()
    ca_file = ca.write_ca(directory / "ca.pem")
    leaf = ca.issue("127.0.0.1", "localhost")
    combined = directory / "uas-combined.pem"
    combined.write_bytes(leaf.cert_pem + leaf.key_pem)
    combined.chmod(0o600)
    port = _free_port_pair()
    config = directory / "uas"
    config.mkdir()
    (config / "config").write_text(
        "\n".join(
            [
                "poll_method epoll",
                f"sip_listen 127.0.0.1:{port}",
                f"sip_certificate {combined}",
                f"sip_cafile {ca_file}",
                "audio_player alsa,null",
                "audio_source ausine,440",
                "audio_alert alsa,null",
                "ausrc_srate 48000",
                "ausrc_channels 2",
                "net_interface 127.0.0.1",
                "dns_server 127.0.0.1:53",
                f"rtp_ports {rtp_ports[0]}-{rtp_ports[1]}",
                "rtp_stats yes",
                "rtp_timeout 30",
                f"module_path {MODULES}",
                "module g711.so",
                "module alsa.so",
                "module ausine.so",
                "module srtp.so",
                "module_tmp uuid.so",
                "module_tmp account.so",
                "module_app menu.so",
                "",
            ]
        )
    )
    (config / "accounts").write_text(
        "<sip:uas@127.0.0.1;transport=tls>;regint=0;answermode=auto;mediaenc=srtp-mand;audio_codecs=PCMU\n"
    )
    process = subprocess.Popen(
        [BARESIP, "-f", str(config), "-s"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peer = BaresipPeer(uri=f"sip:uas@127.0.0.1:{port + 1};transport=tls", ca_file=ca_file, process=process)
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with peer.changed:
                peer.lines.append(line.rstrip("\n"))
                peer.changed.notify_all()
            if "baresip is ready" in line:
                ready.set()
        with peer.changed:
            peer.changed.notify_all()
        ready.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        if not ready.wait(timeout=30) or process.poll() is not None:
            raise RuntimeError(f"baresip did not start:\n{peer.log()}")
        yield peer
    finally:
        peer.stop()
        reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
