"""MeetingsClient error mapping and retries, against a real boto3 chime-sdk-meetings client with Stubber."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from botocore.stub import Stubber

from chalicelib.clients import (
    get_dynamodb_client,
    get_meetings_client,
    get_sqs_client,
    reset_clients,
)
from chalicelib.errors import (
    AttendeeLimitReached,
    ConfigurationError,
    MeetingGone,
    MeetingsApiError,
    MeetingsRequestRejected,
    MeetingsUnavailable,
)
from chalicelib.meetings import CreatedAttendee, MeetingsClient

MEETING_ID = "87654321-4321-4321-1234-111122223333"
ATTENDEE_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
EXTERNAL_USER_ID = "dialout#vc1#87654321"
JOIN_TOKEN = "ZmFrZS1qb2luLXRva2VuLWZvci10ZXN0cw+/x"
CREATE_PARAMS = {"MeetingId": MEETING_ID, "ExternalUserId": EXTERNAL_USER_ID}


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    reset_clients()
    yield
    reset_clients()


@pytest.fixture
def boto_client(aws_env: None) -> Any:
    return get_meetings_client()


@pytest.fixture
def stubber(boto_client: Any) -> Iterator[Stubber]:
    with Stubber(boto_client) as stub:
        yield stub


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def _count_calls(boto_client: Any, operation: str) -> list[int]:
    calls: list[int] = []
    boto_client.meta.events.register(
        f"before-parameter-build.chime-sdk-meetings.{operation}", lambda **_: calls.append(1)
    )
    return calls


def _meetings(boto_client: Any, recorder: Recorder, max_attempts: int = 4) -> MeetingsClient:
    return MeetingsClient(boto_client, sleep=recorder.sleep, max_attempts=max_attempts, jitter=lambda: 1.0)


def _created() -> dict[str, Any]:
    return {
        "Attendee": {"AttendeeId": ATTENDEE_ID, "ExternalUserId": EXTERNAL_USER_ID, "JoinToken": JOIN_TOKEN}
    }


def test_create_attendee_success(boto_client: Any, stubber: Stubber) -> None:
    stubber.add_response("create_attendee", _created(), CREATE_PARAMS)
    attendee = _meetings(boto_client, Recorder()).create_attendee(MEETING_ID, EXTERNAL_USER_ID)
    assert attendee.attendee_id == ATTENDEE_ID
    assert attendee.external_user_id == EXTERNAL_USER_ID
    assert attendee.join_token.get_secret_value() == JOIN_TOKEN
    assert JOIN_TOKEN not in repr(attendee)
    assert JOIN_TOKEN not in str(attendee)
    stubber.assert_no_pending_responses()


def test_not_found_is_meeting_gone_without_retry(boto_client: Any, stubber: Stubber) -> None:
    # GIVEN a meeting that has ended
    recorder = Recorder()
    calls = _count_calls(boto_client, "CreateAttendee")
    stubber.add_client_error("create_attendee", "NotFoundException", "The meeting has ended", 404)
    # WHEN we create an attendee THEN MeetingGone, one call, no sleep
    with pytest.raises(MeetingGone) as caught:
        _meetings(boto_client, recorder).create_attendee(MEETING_ID, EXTERNAL_USER_ID)
    assert (caught.value.code, caught.value.operation, caught.value.meeting_id) == (
        "NotFoundException",
        "CreateAttendee",
        MEETING_ID,
    )
    assert len(calls) == 1
    assert recorder.sleeps == []


def test_limit_exceeded_is_called_exactly_once(boto_client: Any, stubber: Stubber) -> None:
    # GIVEN a full meeting, and a success queued behind the error that a retry would consume
    recorder = Recorder()
    calls = _count_calls(boto_client, "CreateAttendee")
    stubber.add_client_error("create_attendee", "LimitExceededException", "250 attendees", 400)
    stubber.add_response("create_attendee", _created(), CREATE_PARAMS)
    # WHEN we create an attendee
    with pytest.raises(AttendeeLimitReached) as caught:
        _meetings(boto_client, recorder).create_attendee(MEETING_ID, EXTERNAL_USER_ID)
    # THEN exactly one request was made and nothing slept
    assert caught.value.code == "LimitExceededException"
    assert len(calls) == 1
    assert recorder.sleeps == []
    with pytest.raises(AssertionError):
        stubber.assert_no_pending_responses()


def test_throttling_is_retried_with_backoff_then_unavailable(boto_client: Any, stubber: Stubber) -> None:
    # GIVEN a service that throttles every attempt
    recorder = Recorder()
    calls = _count_calls(boto_client, "CreateAttendee")
    for _ in range(4):
        stubber.add_client_error("create_attendee", "ThrottlingException", "Rate exceeded", 429)
    # WHEN we create an attendee with 4 attempts
    with pytest.raises(MeetingsUnavailable) as caught:
        _meetings(boto_client, recorder, max_attempts=4).create_attendee(MEETING_ID, EXTERNAL_USER_ID)
    # THEN 4 calls, 3 exponentially growing sleeps, and the error says so
    assert len(calls) == 4
    assert recorder.sleeps == pytest.approx([0.2, 0.4, 0.8])
    assert (caught.value.code, caught.value.attempts) == ("ThrottlingException", 4)
    stubber.assert_no_pending_responses()


def test_backoff_is_capped_and_jittered(boto_client: Any, stubber: Stubber) -> None:
    recorder = Recorder()
    for _ in range(6):
        stubber.add_client_error("get_meeting", "ServiceFailureException", "boom", 500)
    client = MeetingsClient(
        boto_client,
        sleep=recorder.sleep,
        max_attempts=6,
        base_delay_s=1.0,
        max_delay_s=3.0,
        jitter=lambda: 0.0,
    )
    with pytest.raises(MeetingsUnavailable):
        client.get_meeting(MEETING_ID)
    assert recorder.sleeps == pytest.approx([0.5, 1.0, 1.5, 1.5, 1.5])


def test_throttling_then_success(boto_client: Any, stubber: Stubber) -> None:
    recorder = Recorder()
    stubber.add_client_error("create_attendee", "ThrottlingException", "Rate exceeded", 429)
    stubber.add_client_error("create_attendee", "ServiceFailureException", "oops", 500)
    stubber.add_response("create_attendee", _created(), CREATE_PARAMS)
    attendee = _meetings(boto_client, recorder).create_attendee(MEETING_ID, EXTERNAL_USER_ID)
    assert attendee.attendee_id == ATTENDEE_ID
    assert len(recorder.sleeps) == 2


def test_service_unavailable_honours_retry_after(boto_client: Any, stubber: Stubber) -> None:
    recorder = Recorder()
    stubber.add_client_error(
        "create_attendee",
        "ServiceUnavailableException",
        "busy",
        503,
        modeled_fields={"RetryAfterSeconds": "2"},
    )
    stubber.add_response("create_attendee", _created(), CREATE_PARAMS)
    _meetings(boto_client, recorder).create_attendee(MEETING_ID, EXTERNAL_USER_ID)
    assert recorder.sleeps == [2.0]


def test_retry_after_beyond_our_budget_gives_up_at_once(boto_client: Any, stubber: Stubber) -> None:
    recorder = Recorder()
    stubber.add_client_error(
        "create_attendee",
        "ServiceUnavailableException",
        "busy",
        503,
        modeled_fields={"RetryAfterSeconds": "60"},
    )
    with pytest.raises(MeetingsUnavailable) as caught:
        _meetings(boto_client, recorder).create_attendee(MEETING_ID, EXTERNAL_USER_ID)
    assert recorder.sleeps == []
    assert (caught.value.attempts, caught.value.retry_after_s) == (1, 60.0)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("BadRequestException", 400),
        ("UnauthorizedException", 401),
        ("ForbiddenException", 403),
        ("UnprocessableEntityException", 422),
    ],
)
def test_refusals_are_not_retried(boto_client: Any, stubber: Stubber, code: str, status: int) -> None:
    recorder = Recorder()
    calls = _count_calls(boto_client, "CreateAttendee")
    stubber.add_client_error("create_attendee", code, f"rejected {EXTERNAL_USER_ID}", status)
    with pytest.raises(MeetingsRequestRejected) as caught:
        _meetings(boto_client, recorder).create_attendee(MEETING_ID, EXTERNAL_USER_ID)
    assert caught.value.code == code
    assert len(calls) == 1
    assert recorder.sleeps == []
    # The service message may quote the request; it is not carried over.
    assert EXTERNAL_USER_ID not in str(caught.value)
    assert caught.value.__suppress_context__


def test_every_mapped_error_is_a_meetings_api_error() -> None:
    for cls in (MeetingGone, AttendeeLimitReached, MeetingsUnavailable, MeetingsRequestRejected):
        assert issubclass(cls, MeetingsApiError)


def test_response_without_join_token_is_unavailable(boto_client: Any, stubber: Stubber) -> None:
    stubber.add_response("create_attendee", {"Attendee": {"AttendeeId": ATTENDEE_ID}}, CREATE_PARAMS)
    with pytest.raises(MeetingsUnavailable) as caught:
        _meetings(boto_client, Recorder()).create_attendee(MEETING_ID, EXTERNAL_USER_ID)
    assert caught.value.code == "InvalidResponse"


def test_delete_attendee(boto_client: Any, stubber: Stubber) -> None:
    params = {"MeetingId": MEETING_ID, "AttendeeId": ATTENDEE_ID}
    stubber.add_response("delete_attendee", {}, params)
    stubber.add_client_error("delete_attendee", "NotFoundException", "gone", 404, expected_params=params)
    client = _meetings(boto_client, Recorder())
    assert client.delete_attendee(MEETING_ID, ATTENDEE_ID) is True
    assert client.delete_attendee(MEETING_ID, ATTENDEE_ID) is False
    stubber.assert_no_pending_responses()


def test_get_meeting(boto_client: Any, stubber: Stubber) -> None:
    stubber.add_response("get_meeting", {"Meeting": {"MeetingId": MEETING_ID}}, {"MeetingId": MEETING_ID})
    stubber.add_client_error("get_meeting", "NotFoundException", "gone", 404)
    client = _meetings(boto_client, Recorder())
    assert client.get_meeting(MEETING_ID) is True
    assert client.get_meeting(MEETING_ID) is False


def test_bare_5xx_status_code_is_retried(boto_client: Any, stubber: Stubber) -> None:
    recorder = Recorder()
    stubber.add_client_error("get_meeting", "502", "", 502)
    stubber.add_response("get_meeting", {"Meeting": {"MeetingId": MEETING_ID}})
    assert _meetings(boto_client, recorder).get_meeting(MEETING_ID) is True
    assert len(recorder.sleeps) == 1


@pytest.mark.parametrize(
    ("meeting_id", "external_user_id"),
    [("nope", EXTERNAL_USER_ID), (MEETING_ID, "x"), (MEETING_ID, "y" * 65), (MEETING_ID, "aws:reserved")],
)
def test_bad_arguments_are_refused_locally(boto_client: Any, meeting_id: str, external_user_id: str) -> None:
    calls = _count_calls(boto_client, "CreateAttendee")
    with pytest.raises(ValueError, match="must"):
        _meetings(boto_client, Recorder()).create_attendee(meeting_id, external_user_id)
    assert calls == []


def test_constructor_validates_retry_settings(boto_client: Any) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        MeetingsClient(boto_client, max_attempts=0)
    with pytest.raises(ValueError, match="base_delay_s"):
        MeetingsClient(boto_client, base_delay_s=10, max_delay_s=1)


def test_created_attendee_hides_token() -> None:
    from pydantic import SecretStr

    attendee = CreatedAttendee(ATTENDEE_ID, EXTERNAL_USER_ID, SecretStr(JOIN_TOKEN))
    assert JOIN_TOKEN not in repr(attendee)


# --- clients.py -----------------------------------------------------------------------------------------


def test_meetings_client_has_botocore_retries_off(aws_env: None) -> None:
    client = get_meetings_client()
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert client.meta.service_model.service_name == "chime-sdk-meetings"
    assert client.meta.region_name == "us-east-1"


def test_clients_are_cached_until_reset(aws_env: None) -> None:
    first = get_sqs_client()
    assert get_sqs_client() is first
    assert get_dynamodb_client() is get_dynamodb_client()
    reset_clients()
    assert get_sqs_client() is not first


def test_endpoint_comes_from_the_standard_boto3_variable(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CHIME_SDK_MEETINGS", "http://127.0.0.1:8999")
    assert get_meetings_client().meta.endpoint_url == "http://127.0.0.1:8999"


def test_region_falls_back_to_default_region(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert get_dynamodb_client().meta.region_name == "eu-west-1"


def test_missing_region_is_a_configuration_error(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ConfigurationError, match="AWS_REGION"):
        get_meetings_client()


class _LimitExceededHandler(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.requests.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"Code": "LimitExceededException", "Message": "Attendee limit reached"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-ErrorType", "LimitExceededException")
        self.send_header("x-amzn-RequestId", "5b0e0f9c-0000-4000-8000-000000000001")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.loopback
def test_limit_exceeded_on_the_wire_is_sent_once(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a loopback endpoint that answers every CreateAttendee with LimitExceededException (HTTP 400),
    # which botocore's standard retry mode would retry
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LimitExceededHandler)
    _LimitExceededHandler.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_CHIME_SDK_MEETINGS", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        recorder = Recorder()
        # WHEN the factory-made client creates an attendee
        with pytest.raises(AttendeeLimitReached):
            _meetings(get_meetings_client(), recorder).create_attendee(MEETING_ID, EXTERNAL_USER_ID)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    # THEN exactly one HTTP request was sent
    assert _LimitExceededHandler.requests == [f"/meetings/{MEETING_ID}/attendees"]
    assert recorder.sleeps == []
