"""Suite-wide fixtures: no test sees the developer's AWS configuration or reaches a real endpoint."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# The machine is shared and noisy: property tests judge behaviour, never speed.
settings.register_profile("project", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("project")

_SCRUBBED_PREFIXES = ("AWS_", "POWERTOOLS_", "DIAL_", "CALLS_", "SIP_", "MEDIA_", "WORKER_")


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    """Strip variables the project reads, provide fake credentials, restore everything afterwards."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(_SCRUBBED_PREFIXES):
            del os.environ[name]
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
