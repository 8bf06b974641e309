"""Lazily created, cached boto3 clients for the handlers.

Nothing is created at import time (tests and ``chalice package`` import app.py without AWS access). The region
comes from ``AWS_REGION`` (set by Lambda) or ``AWS_DEFAULT_REGION``; local endpoints come from boto3's own
``AWS_ENDPOINT_URL_<SERVICE>`` variables (e.g. ``AWS_ENDPOINT_URL_CHIME_SDK_MEETINGS``), so production and the
local emulator run the same code. ``reset_clients()`` drops the cache after a test changes the environment.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Final

import boto3
from botocore.config import Config

from chalicelib.errors import ConfigurationError

__all__ = [
    "MEETINGS_CLIENT_CONFIG",
    "SQS_AND_DYNAMODB_CONFIG",
    "get_dynamodb_client",
    "get_meetings_client",
    "get_sqs_client",
    "reset_clients",
]

#: botocore must not retry Chime calls: standard mode would retry LimitExceededException (attendee limit
#: reached, not transient). ``meetings.MeetingsClient`` runs its own loop for the transient errors.
MEETINGS_CLIENT_CONFIG: Final = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=3,
    read_timeout=10,
)
#: SQS and DynamoDB: botocore's standard retries are right (throttling and 5xx only; conditional-check
#: failures are not retried).
SQS_AND_DYNAMODB_CONFIG: Final = Config(
    retries={"mode": "standard", "total_max_attempts": 3},
    connect_timeout=3,
    read_timeout=10,
)

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _region() -> str:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise ConfigurationError("AWS_REGION (or AWS_DEFAULT_REGION) is not set", variable="AWS_REGION")
    return region


def _client(service: str, config: Config) -> Any:
    with _lock:
        client = _clients.get(service)
        if client is None:
            # A fresh Session per client reads the current environment (credentials, endpoint variables).
            client = boto3.session.Session().client(service, region_name=_region(), config=config)
            _clients[service] = client
        return client


def get_meetings_client() -> Any:
    """The ``chime-sdk-meetings`` client, with botocore retries off."""
    return _client("chime-sdk-meetings", MEETINGS_CLIENT_CONFIG)


def get_sqs_client() -> Any:
    return _client("sqs", SQS_AND_DYNAMODB_CONFIG)


def get_dynamodb_client() -> Any:
    return _client("dynamodb", SQS_AND_DYNAMODB_CONFIG)


def reset_clients() -> None:
    """Forget every cached client (tests: after changing region, endpoints or credentials)."""
    with _lock:
        _clients.clear()
