"""The media worker for the demo: ``python -m media_worker`` in a subprocess, configured only by environment.

Its JSON log lines go to a file the demo reads afterwards (end-of-call summaries, and the check that no join
token ever reached a log); its health server's ``/calls`` is what the live table shows.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from emulator.local_aws import FAKE_CREDENTIALS, LOCAL_REGION

__all__ = ["WorkerProcess", "free_tcp_port", "worker_environment"]

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
_HTTP_TIMEOUT_S: Final = 2.0


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def worker_environment(
    *, moto_url: str, queue_url: str, table: str, ca_file: Path, health_port: int, rtp_ports: tuple[int, int]
) -> dict[str, str]:
    """Everything the worker is told: the documented variables of ``media_worker.settings.ENV``."""
    return {
        **FAKE_CREDENTIALS,
        "AWS_REGION": LOCAL_REGION,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_ENDPOINT_URL_SQS": moto_url,
        "AWS_ENDPOINT_URL_DYNAMODB": moto_url,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "DIAL_QUEUE_URL": queue_url,
        "CALLS_TABLE": table,
        "WORKER_ID": "demo-worker-1",
        "SIP_CA_FILE": str(ca_file),
        "MEDIA_BIND_IP": "127.0.0.1",
        "RTP_PORT_MIN": str(rtp_ports[0]),
        "RTP_PORT_MAX": str(rtp_ports[1]),
        "MAX_CALLS": "8",
        "HEALTH_HOST": "127.0.0.1",
        "HEALTH_PORT": str(health_port),
        "HEARTBEAT_SECONDS": "1",
        "LEASE_SECONDS": "5",
        "DRAIN_TIMEOUT_SECONDS": "10",
        "CALLS_PER_SECOND": "5",
        "MEDIA_TIMEOUT_SECONDS": "30",
        "POWERTOOLS_SERVICE_NAME": "media-worker",
    }


class WorkerProcess:
    """One worker subprocess; logs (stdout and stderr) go to ``log_path``."""

    def __init__(self, environment: Mapping[str, str], log_path: Path) -> None:
        self.environment = dict(environment)
        self.log_path = log_path
        self.health_url = f"http://127.0.0.1:{environment['HEALTH_PORT']}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self, ready_timeout_s: float = 20.0) -> None:
        """Start it and wait until ``/readyz`` says it polls the dial queue."""
        self._log = self.log_path.open("wb")
        # Only the listed variables (plus PATH to find nothing but itself): the worker reads its whole
        # configuration from them, exactly as in its container.
        env = {**self.environment, "PATH": os.environ.get("PATH", "")}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "media_worker"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the worker exited at start with status {self._process.returncode}")
            status = self.get("/readyz")
            if isinstance(status, dict) and status.get("ready"):
                return
            time.sleep(0.1)  # polling a subprocess's readiness endpoint: there is nothing to wait on
        raise RuntimeError(f"the worker was not ready within {ready_timeout_s:.0f} s")

    def get(self, path: str) -> Any:
        """GET a health-server path; None when it does not answer (starting, or gone)."""
        try:
            # Always http://127.0.0.1:<port> built in __init__.
            with urllib.request.urlopen(self.health_url + path, timeout=_HTTP_TIMEOUT_S) as reply:  # noqa: S310
                return json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read() or b"null")
        except (OSError, ValueError):
            return None

    def calls(self) -> list[dict[str, Any]]:
        snapshots = self.get("/calls")
        return snapshots if isinstance(snapshots, list) else []

    def terminate(self) -> None:
        """SIGTERM: the worker drains (BYE on every call) and exits."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float) -> int | None:
        """The exit status, or None if it is still running at the deadline."""
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not finish; closes the log."""
        process = self._process
        if process is not None and process.poll() is None:
            self.terminate()
            if self.wait(15.0) is None:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_records(self) -> list[dict[str, Any]]:
        """The worker's JSON log lines (others are skipped)."""
        records = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
