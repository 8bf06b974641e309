"""Dial plan: parsing, first-match-wins matching, field-path errors without values, our attendee ids."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.contract import DialTarget
from chalicelib.dial_plan import (
    DialPlan,
    InvalidDialPlan,
    external_user_id_for,
    is_our_attendee,
    target_name_of,
)
from chalicelib.errors import ConfigurationError

MEETING_ID = "87654321-4321-4321-1234-111122223333"
# chime-sdk-meetings ExternalUserId pattern and length.
EXTERNAL_USER_ID = re.compile(r"[-_&@+=,(){}\[\]/«».:|'\"#a-zA-Z0-9À-ÿ\s]{2,64}")

TARGET: dict[str, Any] = {
    "name": "vc1",
    "host": "abcdef1ghij2klmno3pqr4.voiceconnector.chime.aws",
    "port": 5061,
    "join_number": "17035550122",
    "from_number": "+12065550100",
    "codecs": ["PCMU", "PCMA"],
    "srtp_suites": ["AES_CM_128_HMAC_SHA1_80"],
    "media_app": "silence",
    "media_options": {},
    "ring_timeout_s": 60,
    "max_duration_s": 14400,
    "humans_gone_grace_s": 90,
}
PLAN: dict[str, Any] = {
    "rules": [
        {
            "name": "sales",
            "match": {"external_meeting_id": "sales-*", "media_regions": ["us-east-1"]},
            "targets": [TARGET, {**TARGET, "name": "vc2", "from_number": "+12065550101"}],
        },
        {
            "name": "support",
            "match": {"external_meeting_id": "support-*"},
            "targets": [{**TARGET, "name": "s1"}],
        },
        {
            "name": "everything-else",
            "targets": [{"name": "fallback", "host": "h.example", "from_number": "+15550100"}],
        },
    ]
}


def _plan(data: dict[str, Any] = PLAN) -> DialPlan:
    return DialPlan.from_json(json.dumps(data))


def _error(data: Any) -> str:
    with pytest.raises(InvalidDialPlan) as caught:
        DialPlan.from_json(json.dumps(data))
    return str(caught.value)


def test_parses_targets_into_dial_targets_with_grace() -> None:
    plan = _plan()
    first = plan.rules[0].targets[0]
    assert first.name == "vc1"
    assert first.humans_gone_grace_s == 90
    assert first.dial_target == DialTarget(**{k: v for k, v in TARGET.items() if k != "humans_gone_grace_s"})
    fallback = plan.rules[2].targets[0]
    assert fallback.humans_gone_grace_s == 120
    assert fallback.dial_target.port == 5061


def test_first_matching_rule_wins() -> None:
    plan = _plan()
    matched = plan.match("sales-weekly", "us-east-1")
    assert matched is not None
    assert (matched.name, matched.index) == ("sales", 0)
    assert [t.name for t in matched.targets] == ["vc1", "vc2"]


def test_media_region_restricts_a_rule() -> None:
    matched = _plan().match("sales-weekly", "eu-west-1")
    assert matched is not None
    assert matched.name == "everything-else"


def test_glob_is_case_sensitive() -> None:
    matched = _plan().match("SALES-weekly", "us-east-1")
    assert matched is not None
    assert matched.name == "everything-else"


def test_no_match_returns_none() -> None:
    plan = DialPlan.from_mapping(
        {"rules": [{"name": "only", "match": {"external_meeting_id": "x-*"}, "targets": [TARGET]}]}
    )
    assert plan.match("y-1", "us-east-1") is None


def test_missing_external_meeting_id_matches_only_star() -> None:
    plan = _plan()
    matched = plan.match(None, "us-east-1")
    assert matched is not None
    assert matched.name == "everything-else"


def test_empty_plan_matches_nothing() -> None:
    assert DialPlan.from_json('{"rules": []}').match("anything", "us-east-1") is None


def test_error_names_field_path_and_not_value() -> None:
    bad = copy.deepcopy(PLAN)
    bad["rules"][0]["targets"][1]["from_number"] = "2065550199-secret"
    text = _error(bad)
    assert "rules[0].targets[1].from_number:" in text
    assert "2065550199-secret" not in text


def test_errors_list_every_bad_field() -> None:
    bad = copy.deepcopy(PLAN)
    bad["rules"][1]["targets"][0]["codecs"] = ["OPUS-xyz"]
    bad["rules"][2]["targets"][0]["humans_gone_grace_s"] = 7200
    text = _error(bad)
    assert "rules[1].targets[0].codecs[0]:" in text
    assert "rules[2].targets[0].humans_gone_grace_s:" in text
    assert "OPUS-xyz" not in text


def test_duplicate_target_names_in_a_rule_are_refused_case_insensitively() -> None:
    bad = copy.deepcopy(PLAN)
    bad["rules"][0]["targets"][1]["name"] = "VC1"
    assert "rules[0].targets:" in _error(bad)


def test_same_target_name_in_different_rules_is_fine() -> None:
    plan = copy.deepcopy(PLAN)
    plan["rules"][1]["targets"][0]["name"] = "vc1"
    assert _plan(plan).rules[1].targets[0].name == "vc1"


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda p: p["rules"][0].pop("targets"), "rules[0].targets:"),
        (lambda p: p["rules"][0].update(targets=[]), "rules[0].targets:"),
        (lambda p: p["rules"][0]["match"].update(media_regions=[]), "rules[0].match.media_regions:"),
        (
            lambda p: p["rules"][0]["match"].update(media_regions=["us east 1"]),
            "rules[0].match.media_regions:",
        ),
        (lambda p: p["rules"][0]["targets"][0].update(port=70000), "rules[0].targets[0].port:"),
        (lambda p: p["rules"][0]["targets"][0].update(unknown=1), "rules[0].targets[0].unknown:"),
        (lambda p: p["rules"][0].update(name=""), "rules[0].name:"),
        (lambda p: p.update(extra=True), "extra:"),
    ],
)
def test_invalid_fields_are_reported_by_path(mutate: Any, path: str) -> None:
    bad = copy.deepcopy(PLAN)
    mutate(bad)
    assert path in _error(bad)


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"rules": {}}', "null"])
def test_non_plans_are_refused(text: str) -> None:
    with pytest.raises(InvalidDialPlan) as caught:
        DialPlan.from_json(text)
    assert caught.value.variable == "DIAL_PLAN"
    assert isinstance(caught.value, ConfigurationError)


def test_external_user_id_shape() -> None:
    assert external_user_id_for("vc1", MEETING_ID) == "dialout#vc1#87654321"


def test_external_user_id_refuses_empty_parts() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        external_user_id_for("", MEETING_ID)


@given(name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}", fullmatch=True))
def test_external_user_id_is_valid_for_every_valid_target_name(name: str) -> None:
    value = external_user_id_for(name, MEETING_ID)
    assert EXTERNAL_USER_ID.fullmatch(value)
    assert not value.startswith("aws:")
    assert is_our_attendee(value)
    assert target_name_of(value) == name


def test_is_our_attendee() -> None:
    assert is_our_attendee("dialout#vc1#87654321")
    assert is_our_attendee("DIALOUT#vc1#87654321")
    assert not is_our_attendee("alice@example.com")
    assert not is_our_attendee("dialout-vc1")
    assert not is_our_attendee(None)


def test_target_name_of_others_is_none() -> None:
    assert target_name_of("alice@example.com") is None
    assert target_name_of("dialout#") is None
    assert target_name_of(None) is None
