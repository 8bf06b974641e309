"""Fixtures for the meetings emulator tests: a running emulator on 127.0.0.1, a boto3 client for it, and a
raw HTTP helper for looking at exactly what goes over the wire."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from emulator import MeetingsEmulator

RawHttp = Callable[..., tuple[int, dict[str, str], bytes]]
MakeMeeting = Callable[..., str]

_SIGNED = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240501/us-east-1/chime/aws4_request, ..."}


@pytest.fixture
def emulator() -> Iterator[MeetingsEmulator]:
    with MeetingsEmulator("127.0.0.1", 0) as running:
        yield running


@pytest.fixture
def chime(emulator: MeetingsEmulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The real boto3 chime-sdk-meetings client, fake credentials, no retries (each call is one request)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = Config(retries={"total_max_attempts": 1})
    return boto3.client(
        "chime-sdk-meetings", region_name="us-east-1", endpoint_url=emulator.url, config=config
    )


@pytest.fixture
def make_meeting(chime: Any) -> MakeMeeting:
    """``make_meeting(request_key="token-1", external_id="mymeeting") -> MeetingId`` through the client."""

    def make(request_key: str = "token-1", external_id: str = "mymeeting") -> str:
        created = chime.create_meeting(
            ClientRequestToken=request_key, MediaRegion="us-east-1", ExternalMeetingId=external_id
        )
        return str(created["Meeting"]["MeetingId"])

    return make


@pytest.fixture
def raw_http(emulator: MeetingsEmulator) -> RawHttp:
    """``raw_http(method, path, body=None, signed=True) -> (status, headers, body)`` without botocore."""

    def send(
        method: str, path: str, body: bytes | None = None, signed: bool = True
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(  # noqa: S310 - loopback http URL of the emulator under test
            emulator.url + path, data=body, method=method, headers=_SIGNED if signed else {}
        )
        try:
            with urllib.request.urlopen(request) as response:  # noqa: S310 - loopback http URL of the emulator under test
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, dict(error.headers.items()), error.read()

    return send
