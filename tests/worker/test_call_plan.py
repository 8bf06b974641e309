"""CallPlan: the documented join URI, To with token and meeting id, E.164 From; the token never shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.contract import DialRequest
from media_worker.call_plan import CallPlan, CallPlanError
from media_worker.settings import WorkerSettings

TOKEN = "ab+cd/ef=="  # '+' and '/' are paramchar, '=' must be escaped (chime-facts §2.3)
MEETING = "11111111-2222-3333-4444-555555555555"
ATTENDEE = "66666666-7777-8888-9999-000000000000"
HOST = "abcdef1ghij2klmno3pqr4.voiceconnector.chime.aws"


def job(**target: Any) -> DialRequest:
    return DialRequest.model_validate(
        {
            "call_id": "call-1",
            "attempt": 2,
            "meeting_id": MEETING,
            "media_region": "us-east-1",
            "attendee_id": ATTENDEE,
            "join_token": TOKEN,
            "target": {"name": "primary", "host": HOST, "from_number": "+12065550100", **target},
            "requested_at": datetime(2024, 1, 1, tzinfo=UTC),
            "event_id": "evt-1",
        }
    )


def test_dial_request_becomes_the_documented_uris() -> None:
    plan = CallPlan.from_dial_request(job(join_number="+17035550122"), WorkerSettings())
    assert str(plan.request_uri) == (
        f"sip:+17035550122@{HOST};transport=tls;X-chime-join-token=ab+cd/ef%3D%3D"
    )
    assert str(plan.to) == (
        f"sip:+17035550122@{HOST};X-chime-join-token=ab+cd/ef%3D%3D;X-chime-meeting-id={MEETING}"
    )
    assert str(plan.from_uri) == f"sip:+12065550100@{HOST}"
    assert (plan.host, plan.port) == (HOST, 5061)
    assert plan.label == "call-1#2@primary"
    assert plan.codecs == ("PCMU", "PCMA")
    assert plan.credentials is None


def test_non_default_port_is_in_the_uri_and_unplayable_codecs_are_not_offered() -> None:
    plan = CallPlan.from_dial_request(job(port=5071, codecs=["G722", "PCMA"]), WorkerSettings())
    assert plan.request_uri.port == 5071
    assert plan.port == 5071
    assert plan.codecs == ("PCMA",)


def test_digest_credentials_come_from_settings() -> None:
    settings = WorkerSettings(
        sip_username="user", sip_password="pw-secret"
    )  # pydantic coerces str to SecretStr
    plan = CallPlan.from_dial_request(job(), settings)
    assert plan.credentials is not None
    assert plan.credentials.username == "user"
    assert "pw-secret" not in repr(plan)


def test_token_is_never_in_repr_or_summary() -> None:
    plan = CallPlan.from_dial_request(job(), WorkerSettings())
    for text in (repr(plan), str(plan), json.dumps(plan.summary())):
        assert TOKEN not in text
        assert "ab+cd" not in text
    assert "X-chime-join-token=***" in plan.summary()["request_uri"]


def test_for_uri_adds_transport_and_keeps_token_out_of_errors() -> None:
    plan = CallPlan.for_uri(
        f"sip:+17035550122@{HOST};X-chime-join-token=secret-tok", "+12065550100", meeting_id=MEETING
    )
    assert str(plan.request_uri) == f"sip:+17035550122@{HOST};X-chime-join-token=secret-tok;transport=tls"
    assert (
        str(plan.to) == f"sip:+17035550122@{HOST};X-chime-join-token=secret-tok;X-chime-meeting-id={MEETING}"
    )
    assert "secret-tok" not in repr(plan)
    with pytest.raises(CallPlanError) as caught:
        CallPlan.for_uri(f"sip:+1@{HOST};X-chime-join-token=secret-tok", "12065550100")
    assert "E.164" in str(caught.value)
    with pytest.raises(CallPlanError) as bad:
        CallPlan.for_uri("sip:+1 @host;X-chime-join-token=secret-tok", "+12065550100")
    assert "secret-tok" not in str(bad.value)


@pytest.mark.parametrize("digits", ["12a#", "x", "1" * 65])
def test_dtmf_is_validated(digits: str) -> None:
    if digits == "12a#":
        assert CallPlan.for_uri(f"sip:+1@{HOST}", "+12065550100", dtmf=digits).dtmf == "12A#"
    else:
        with pytest.raises(CallPlanError, match="DTMF"):
            CallPlan.for_uri(f"sip:+1@{HOST}", "+12065550100", dtmf=digits)
