"""Builds the worker image once per test session with ``scripts/container-image.sh`` (podman + runc).

The first build on a machine also makes the Debian base image with debootstrap; later builds reuse it and
podman's layer cache, so a warm session only re-copies the sources.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNC = Path("/usr/sbin/runc")
IMAGE_TAG = "localhost/chime-dialout-worker:test"
PODMAN = ("podman", "--runtime", str(RUNC), "--cgroup-manager=cgroupfs")
RUN = (
    *PODMAN,
    "run",
    "--rm",
    "--network",
    "host",
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=4096:4096",
    "--no-healthcheck",
)
BUILD_TIMEOUT_S = 900.0


def missing_tools() -> str | None:
    """None when the image can be built and run here, else why the container tests skip."""
    missing = [name for name in ("podman", "debootstrap") if shutil.which(name) is None]
    if not RUNC.exists():
        missing.append(str(RUNC))
    if not missing:
        return None
    installer = "scripts/install-system-peers.sh"
    return f"{', '.join(missing)} not installed (make test installs them as root via {installer})"


@pytest.fixture(scope="session")
def worker_image() -> str:
    reason = missing_tools()
    if reason is not None:
        pytest.skip(reason)
    built = subprocess.run(
        [str(ROOT / "scripts" / "container-image.sh"), IMAGE_TAG],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
        cwd=ROOT,
    )
    if built.returncode != 0:
        pytest.fail(f"image build failed ({built.returncode}):\n{built.stdout}\n{built.stderr}")
    return IMAGE_TAG
