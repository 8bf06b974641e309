"""DialRequest v1: versioning, token secrecy, and the JSON round trip the SQS queue relies on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.contract import CONTRACT_VERSION, DialRequest, DialTarget, InvalidDialRequest

JOIN_TOKEN = "c2VjcmV0LWpvaW4tdG9rZW4tZm9yLXRoZS1tZWV0aW5n+/Zz"


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": 1,
        "call_id": "87654321-4321-4321-1234-111122223333:vc1",
        "attempt": 2,
        "meeting_id": "87654321-4321-4321-1234-111122223333",
        "external_meeting_id": "sales-weekly-2024-05-01",
        "media_region": "us-east-1",
        "attendee_id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        "join_token": JOIN_TOKEN,
        "target": {
            "name": "vc1",
            "host": "abcdef1ghij2klmno3pqr4.voiceconnector.chime.aws",
            "from_number": "+12065550100",
        },
        "requested_at": "2024-05-01T12:00:01Z",
        "event_id": "6f8d3c2e-1111-2222-3333-444455556601",
    }
    body.update(overrides)
    return body


def _request() -> DialRequest:
    return DialRequest.from_json(json.dumps(_body()))


def test_round_trip_to_json_from_json() -> None:
    request = _request()
    again = DialRequest.from_json(request.to_json())
    assert again == request
    assert again.join_token.get_secret_value() == JOIN_TOKEN
    assert again.requested_at == datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC)
    assert again.target == DialTarget(
        name="vc1", host="abcdef1ghij2klmno3pqr4.voiceconnector.chime.aws", from_number="+12065550100"
    )


def test_wire_body_carries_the_token_in_clear() -> None:
    # The queue is the one place the token travels: the worker needs it to dial.
    assert json.loads(_request().to_json())["join_token"] == JOIN_TOKEN


def test_version_defaults_to_current() -> None:
    body = _body()
    del body["version"]
    assert DialRequest.from_json(json.dumps(body)).version == CONTRACT_VERSION


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_other_versions_are_refused_with_a_clear_error(version: Any) -> None:
    with pytest.raises(InvalidDialRequest) as caught:
        DialRequest.from_json(json.dumps(_body(version=version)))
    text = str(caught.value)
    assert "version" in text
    assert JOIN_TOKEN not in text


def test_future_version_error_says_what_to_do() -> None:
    with pytest.raises(InvalidDialRequest, match=r"unsupported DialRequest version 2.*deploy matching"):
        DialRequest.from_json(json.dumps(_body(version=2)))


def test_token_never_in_repr_or_str() -> None:
    request = _request()
    assert JOIN_TOKEN not in repr(request)
    assert JOIN_TOKEN not in str(request)
    assert JOIN_TOKEN not in repr(request.join_token)
    assert JOIN_TOKEN not in f"{request}"


def test_token_never_in_redacted() -> None:
    redacted = _request().redacted()
    assert redacted["join_token"] == "***"
    assert JOIN_TOKEN not in json.dumps(redacted)
    assert redacted["call_id"] == "87654321-4321-4321-1234-111122223333:vc1"


@pytest.mark.parametrize(
    "overrides",
    [
        {"join_token": "x"},  # too short: the token itself would be the bad value
        {"meeting_id": "not-a-guid"},
        {"attempt": 0},
        {"target": {"name": "vc1", "host": "h.example", "from_number": "12065550100"}},
        {"unexpected": JOIN_TOKEN},
    ],
)
def test_validation_errors_never_echo_values(overrides: dict[str, Any]) -> None:
    body = _body(**overrides)
    with pytest.raises(InvalidDialRequest) as caught:
        DialRequest.from_json(json.dumps(body))
    text = f"{caught.value} {caught.value!r}"
    for value in (JOIN_TOKEN, "not-a-guid", "12065550100"):
        assert value not in text
    assert caught.value.__cause__ is None


def test_bad_token_error_names_the_field_only() -> None:
    secret = "s" * 3000
    with pytest.raises(InvalidDialRequest) as caught:
        DialRequest.from_json(json.dumps(_body(join_token=secret)))
    assert "join_token" in str(caught.value)
    assert "sss" not in str(caught.value)


def test_garbage_bodies_are_invalid_dial_requests() -> None:
    for body in ("", "{", "[]", "null", json.dumps({"version": 1})):
        with pytest.raises(InvalidDialRequest):
            DialRequest.from_json(body)
