"""The unmodified boto3 chime-sdk-meetings client against the emulator, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from emulator import ENDPOINT_ENV_VAR, MeetingsEmulator

pytestmark = pytest.mark.loopback

MakeMeeting = Callable[..., str]  # fixture signatures, see conftest.py
RawHttp = Callable[..., tuple[int, dict[str, str], bytes]]

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
MEDIA_PLACEMENT_KEYS = {
    "AudioHostUrl", "AudioFallbackUrl", "SignalingUrl", "TurnControlUrl",
    "ScreenDataUrl", "ScreenViewingUrl", "ScreenSharingUrl", "EventIngestionUrl",
}  # fmt: skip


def status_of(error: pytest.ExceptionInfo[Any]) -> int:
    return int(error.value.response["ResponseMetadata"]["HTTPStatusCode"])


def test_meeting_round_trip(chime: Any) -> None:
    created = chime.create_meeting(
        ClientRequestToken="t-1", MediaRegion="eu-west-2", ExternalMeetingId="weekly"
    )
    meeting = created["Meeting"]

    assert created["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert uuid.UUID(meeting["MeetingId"]).version == 4
    assert (meeting["ExternalMeetingId"], meeting["MediaRegion"]) == ("weekly", "eu-west-2")
    assert meeting["MeetingArn"] == f"arn:aws:chime:us-east-1:111122223333:meeting/{meeting['MeetingId']}"
    assert set(meeting["MediaPlacement"]) == MEDIA_PLACEMENT_KEYS
    assert chime.get_meeting(MeetingId=meeting["MeetingId"])["Meeting"] == meeting

    deleted = chime.delete_meeting(MeetingId=meeting["MeetingId"])

    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(chime.exceptions.NotFoundException) as ended:
        chime.get_meeting(MeetingId=meeting["MeetingId"])
    assert status_of(ended) == 404
    assert ended.value.response["Error"]["Message"] == "The meeting has ended."


def test_create_meeting_is_idempotent_on_client_request_token(
    chime: Any, emulator: MeetingsEmulator, make_meeting: MakeMeeting
) -> None:
    first = make_meeting(request_key="same-token")

    assert make_meeting(request_key="same-token") == first
    assert make_meeting(request_key="other-token") != first
    with pytest.raises(chime.exceptions.ConflictException):
        make_meeting(request_key="same-token", external_id="another-meeting")
    assert len(emulator.store.snapshot()["Meetings"]) == 2


def test_attendee_round_trip(chime: Any, make_meeting: MakeMeeting) -> None:
    meeting_id = make_meeting()

    created = chime.create_attendee(MeetingId=meeting_id, ExternalUserId="dialout#room-1")
    attendee = created["Attendee"]

    assert created["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert attendee["ExternalUserId"] == "dialout#room-1"
    assert attendee["Capabilities"] == {
        "Audio": "SendReceive",
        "Video": "SendReceive",
        "Content": "SendReceive",
    }
    assert chime.get_attendee(MeetingId=meeting_id, AttendeeId=attendee["AttendeeId"])["Attendee"] == attendee
    deleted = chime.delete_attendee(MeetingId=meeting_id, AttendeeId=attendee["AttendeeId"])
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(chime.exceptions.NotFoundException):
        chime.get_attendee(MeetingId=meeting_id, AttendeeId=attendee["AttendeeId"])


def test_capabilities_are_kept(chime: Any, make_meeting: MakeMeeting) -> None:
    audio_only = {"Audio": "SendReceive", "Video": "None", "Content": "Receive"}
    attendee = chime.create_attendee(MeetingId=make_meeting(), ExternalUserId="sip", Capabilities=audio_only)
    assert attendee["Attendee"]["Capabilities"] == audio_only


def test_repeated_external_user_id_returns_the_existing_attendee(
    chime: Any, make_meeting: MakeMeeting
) -> None:
    meeting_id = make_meeting()
    first = chime.create_attendee(MeetingId=meeting_id, ExternalUserId="dialout#room-1")["Attendee"]

    again = chime.create_attendee(MeetingId=meeting_id, ExternalUserId="DIALOUT#room-1")["Attendee"]

    assert again == first
    assert len(chime.list_attendees(MeetingId=meeting_id)["Attendees"]) == 1


def test_concurrent_creates_for_one_external_user_id_make_one_attendee(
    chime: Any, make_meeting: MakeMeeting
) -> None:
    meeting_id = make_meeting()

    def create(_: int) -> str:
        return str(
            chime.create_attendee(MeetingId=meeting_id, ExternalUserId="dialout#x")["Attendee"]["AttendeeId"]
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        attendee_ids = set(pool.map(create, range(24)))

    assert len(attendee_ids) == 1


def test_batch_create_attendee_reports_per_item_errors(chime: Any, make_meeting: MakeMeeting) -> None:
    result = chime.batch_create_attendee(
        MeetingId=make_meeting(),
        Attendees=[{"ExternalUserId": "human-1"}, {"ExternalUserId": "aws:reserved"}],
    )

    assert [attendee["ExternalUserId"] for attendee in result["Attendees"]] == ["human-1"]
    errors = [(error["ExternalUserId"], error["ErrorCode"]) for error in result["Errors"]]
    assert errors == [("aws:reserved", "BadRequest")]


def test_batch_create_attendee_takes_1_to_100(
    chime: Any, make_meeting: MakeMeeting, raw_http: RawHttp
) -> None:
    meeting_id = make_meeting()
    with pytest.raises(chime.exceptions.BadRequestException):
        chime.batch_create_attendee(
            MeetingId=meeting_id, Attendees=[{"ExternalUserId": f"u-{i}"} for i in range(101)]
        )
    # botocore refuses an empty list itself (model min 1), so that one goes by hand.
    path = f"/meetings/{meeting_id}/attendees?operation=batch-create"
    status, headers, _ = raw_http("POST", path, body=b'{"Attendees": []}')
    assert (status, headers["x-amzn-ErrorType"]) == (400, "BadRequestException")


def test_list_attendees_pages_in_creation_order(chime: Any, make_meeting: MakeMeeting) -> None:
    meeting_id = make_meeting()
    created = [
        chime.create_attendee(MeetingId=meeting_id, ExternalUserId=f"user-{i}")["Attendee"]["AttendeeId"]
        for i in range(8)
    ]
    chime.delete_attendee(MeetingId=meeting_id, AttendeeId=created.pop(3))

    pages: list[list[str]] = []
    kwargs: dict[str, Any] = {"MeetingId": meeting_id, "MaxResults": 3}
    while True:
        page = chime.list_attendees(**kwargs)
        pages.append([attendee["AttendeeId"] for attendee in page["Attendees"]])
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]

    assert [len(page) for page in pages] == [3, 3, 1]
    assert [attendee_id for page in pages for attendee_id in page] == created


@pytest.mark.parametrize("kwargs", [{"MaxResults": 101}, {"NextToken": "not-a-token"}])
def test_list_attendees_refuses_bad_paging(
    chime: Any, make_meeting: MakeMeeting, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(chime.exceptions.BadRequestException):
        chime.list_attendees(MeetingId=make_meeting(), **kwargs)


@pytest.mark.parametrize(
    ("operation", "kwargs"),
    [
        ("get_meeting", {"MeetingId": "nope"}),
        ("delete_meeting", {"MeetingId": "not-a-guid"}),
        ("create_attendee", {"MeetingId": "nope", "ExternalUserId": "someone"}),
        ("batch_create_attendee", {"MeetingId": "nope", "Attendees": [{"ExternalUserId": "someone"}]}),
        ("list_attendees", {"MeetingId": "12345678-1234-1234-1234-12345678901"}),
        ("get_attendee", {"MeetingId": "nope", "AttendeeId": UNKNOWN_ID}),
        ("delete_attendee", {"MeetingId": "MEETING", "AttendeeId": "nope"}),
        ("get_attendee", {"MeetingId": "MEETING", "AttendeeId": "../../meetings"}),
    ],
)
def test_malformed_ids_are_bad_requests(
    chime: Any, make_meeting: MakeMeeting, operation: str, kwargs: dict[str, Any]
) -> None:
    if kwargs["MeetingId"] == "MEETING":
        kwargs = {**kwargs, "MeetingId": make_meeting()}
    with pytest.raises(chime.exceptions.BadRequestException) as refused:
        getattr(chime, operation)(**kwargs)
    assert status_of(refused) == 400


@pytest.mark.parametrize(
    "external_user_id", ["x" * 65, "aws:bot", "AWS:bot", "no<angle>brackets", "nul\u0000"]
)
def test_bad_external_user_ids_are_refused(
    chime: Any, make_meeting: MakeMeeting, external_user_id: str
) -> None:
    with pytest.raises(chime.exceptions.BadRequestException) as refused:
        chime.create_attendee(MeetingId=make_meeting(), ExternalUserId=external_user_id)
    assert external_user_id not in refused.value.response["Error"]["Message"]  # sensitive: never echoed


def test_longest_external_user_id_is_accepted(chime: Any, make_meeting: MakeMeeting) -> None:
    attendee = chime.create_attendee(MeetingId=make_meeting(), ExternalUserId="x" * 64)["Attendee"]
    assert attendee["ExternalUserId"] == "x" * 64


@pytest.mark.parametrize(
    "overrides",
    [
        {"ExternalMeetingId": "m" * 65},
        {"ClientRequestToken": "has spaces!"},
        {"ClientRequestToken": "t" * 65},
        {"MediaRegion": "mars-north-1"},
        {"MeetingHostId": "aws:host"},
        {"MeetingFeatures": {"Attendee": {"MaxCount": 251}}},
    ],
)
def test_bad_create_meeting_requests_are_refused(chime: Any, overrides: dict[str, Any]) -> None:
    request = {
        "ClientRequestToken": "token-1",
        "MediaRegion": "us-east-1",
        "ExternalMeetingId": "m1",
        **overrides,
    }
    with pytest.raises(chime.exceptions.BadRequestException):
        chime.create_meeting(**request)


def test_missing_media_region_is_a_bad_request(raw_http: RawHttp) -> None:
    # botocore refuses this itself (required member), so it goes by hand.
    body = json.dumps({"ClientRequestToken": "token-1", "ExternalMeetingId": "m1"}).encode()
    status, headers, payload = raw_http("POST", "/meetings", body=body)
    assert (status, headers["x-amzn-ErrorType"]) == (400, "BadRequestException")
    assert "mediaRegion" in json.loads(payload)["Message"]


def test_unknown_and_ended_meetings_are_not_found(chime: Any, make_meeting: MakeMeeting) -> None:
    with pytest.raises(chime.exceptions.NotFoundException):
        chime.create_attendee(MeetingId=UNKNOWN_ID, ExternalUserId="someone")
    meeting_id = make_meeting()
    chime.delete_meeting(MeetingId=meeting_id)
    with pytest.raises(chime.exceptions.NotFoundException) as ended:
        chime.create_attendee(MeetingId=meeting_id, ExternalUserId="someone")
    assert ended.value.response["Error"]["Message"] == "The meeting has ended."


def test_attendee_limit_is_250(chime: Any, make_meeting: MakeMeeting) -> None:
    meeting_id = make_meeting()
    for start in (0, 100, 200):
        items = [{"ExternalUserId": f"user-{i}"} for i in range(start, min(start + 100, 250))]
        assert chime.batch_create_attendee(MeetingId=meeting_id, Attendees=items)["Errors"] == []

    with pytest.raises(chime.exceptions.LimitExceededException) as full:
        chime.create_attendee(MeetingId=meeting_id, ExternalUserId="one-too-many")

    assert status_of(full) == 400
    first = chime.list_attendees(MeetingId=meeting_id, MaxResults=1)["Attendees"][0]
    chime.delete_attendee(MeetingId=meeting_id, AttendeeId=first["AttendeeId"])
    assert chime.create_attendee(MeetingId=meeting_id, ExternalUserId="one-too-many")["Attendee"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("ThrottlingException", 429),
        ("ServiceUnavailableException", 503),
        ("LimitExceededException", 400),
        ("NotFoundException", 404),
        ("ServiceFailureException", 500),
    ],
)
def test_injected_faults_raise_modeled_exceptions(
    chime: Any, emulator: MeetingsEmulator, make_meeting: MakeMeeting, error: str, status: int
) -> None:
    meeting_id = make_meeting()
    emulator.faults.inject("CreateAttendee", error, times=2)

    for _ in range(2):
        with pytest.raises(getattr(chime.exceptions, error)) as raised:
            chime.create_attendee(MeetingId=meeting_id, ExternalUserId="dialout#x")
        assert status_of(raised) == status

    assert chime.create_attendee(MeetingId=meeting_id, ExternalUserId="dialout#x")["Attendee"]
    assert emulator.request_count("CreateAttendee") == 3
    assert emulator.request_count("CreateMeeting") == 1


@pytest.mark.parametrize(("retry_after", "header"), [(7, "7"), (None, "1")])
def test_service_unavailable_carries_retry_after(
    chime: Any, emulator: MeetingsEmulator, retry_after: int | None, header: str
) -> None:
    emulator.faults.inject("GetMeeting", "ServiceUnavailableException", retry_after=retry_after)
    with pytest.raises(chime.exceptions.ServiceUnavailableException) as raised:
        chime.get_meeting(MeetingId=UNKNOWN_ID)
    assert raised.value.response["RetryAfterSeconds"] == header


def test_error_wire_format(raw_http: RawHttp) -> None:
    status, headers, payload = raw_http("GET", f"/meetings/{UNKNOWN_ID}")

    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert headers["x-amzn-ErrorType"] == "NotFoundException"
    assert uuid.UUID(headers["x-amzn-RequestId"])
    assert json.loads(payload) == {"Code": "NotFoundException", "Message": f"Meeting {UNKNOWN_ID} not found."}


def test_unsigned_requests_are_unauthorized(raw_http: RawHttp) -> None:
    status, headers, payload = raw_http("GET", f"/meetings/{UNKNOWN_ID}", signed=False)
    assert (status, headers["x-amzn-ErrorType"]) == (401, "UnauthorizedException")
    assert json.loads(payload)["Code"] == "UnauthorizedException"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/tags?arn=x", None), ("PUT", f"/meetings/{UNKNOWN_ID}", b"{}"), ("GET", "/", None)],
)
def test_unknown_routes_are_404(raw_http: RawHttp, method: str, path: str, body: bytes | None) -> None:
    status, headers, _ = raw_http(method, path, body=body)
    assert (status, headers["x-amzn-ErrorType"]) == (404, "UnknownOperationException")


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_malformed_bodies_are_bad_requests(raw_http: RawHttp, body: bytes) -> None:
    status, headers, _ = raw_http("POST", "/meetings", body=body)
    assert (status, headers["x-amzn-ErrorType"]) == (400, "BadRequestException")


def test_endpoint_env_var_alone_routes_the_client(
    emulator: MeetingsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENDPOINT_ENV_VAR, emulator.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    plain = boto3.client("chime-sdk-meetings", region_name="us-east-1")
    plain.create_meeting(ClientRequestToken="env-token", MediaRegion="us-east-1", ExternalMeetingId="m1")

    assert emulator.request_count("CreateMeeting") == 1


def test_join_token_dies_with_delete_attendee_and_delete_meeting(
    chime: Any, emulator: MeetingsEmulator, make_meeting: MakeMeeting
) -> None:
    meeting_id = make_meeting()
    first = chime.create_attendee(MeetingId=meeting_id, ExternalUserId="first")["Attendee"]
    second = chime.create_attendee(MeetingId=meeting_id, ExternalUserId="second")["Attendee"]
    assert emulator.is_token_valid(first["JoinToken"]) == (meeting_id, first["AttendeeId"])

    chime.delete_attendee(MeetingId=meeting_id, AttendeeId=first["AttendeeId"])
    assert emulator.is_token_valid(first["JoinToken"]) is None
    assert emulator.is_token_valid(second["JoinToken"]) == (meeting_id, second["AttendeeId"])

    chime.delete_meeting(MeetingId=meeting_id)
    assert emulator.is_token_valid(second["JoinToken"]) is None
    assert emulator.is_token_valid("not+a/token=") is None
