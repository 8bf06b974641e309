"""Settings come from an explicit environment mapping and name the variable that is wrong."""

from __future__ import annotations

import json
import os

import pytest

from chalicelib.dial_plan import InvalidDialPlan
from chalicelib.errors import ConfigurationError
from chalicelib.settings import (
    CALL_RECORD_TTL_DAYS,
    CALLS_TABLE,
    DIAL_PLAN,
    DIAL_QUEUE_URL,
    LEASE_EXPIRED_GRACE_SECONDS,
    MAX_DIAL_ATTEMPTS,
    QUEUED_STUCK_SECONDS,
    Settings,
)

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/111122223333/dial-queue"
PLAN = {
    "rules": [
        {"name": "all", "targets": [{"name": "vc1", "host": "vc.example", "from_number": "+12065550100"}]}
    ]
}
BASE = {CALLS_TABLE: "chime-dialout-calls", DIAL_QUEUE_URL: QUEUE_URL}


def test_defaults() -> None:
    settings = Settings.from_env(BASE)
    assert settings == Settings(calls_table="chime-dialout-calls", dial_queue_url=QUEUE_URL)
    assert (settings.max_dial_attempts, settings.lease_expired_grace_s) == (5, 30.0)
    assert (settings.queued_stuck_s, settings.record_ttl_days) == (120.0, 30)
    assert settings.dial_plan is None


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            DIAL_PLAN: json.dumps(PLAN),
            MAX_DIAL_ATTEMPTS: "3",
            LEASE_EXPIRED_GRACE_SECONDS: "45",
            QUEUED_STUCK_SECONDS: "300",
            CALL_RECORD_TTL_DAYS: "7",
        }
    )
    assert settings.max_dial_attempts == 3
    assert settings.lease_expired_grace_s == 45.0
    assert settings.queued_stuck_s == 300.0
    assert settings.record_ttl_days == 7
    assert settings.require_dial_plan().rules[0].name == "all"


def test_local_queue_url_is_accepted() -> None:
    url = "http://127.0.0.1:5000/123456789012/dial-queue"
    assert Settings.from_env({**BASE, DIAL_QUEUE_URL: url}).dial_queue_url == url


def test_nothing_is_read_from_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_DIAL_ATTEMPTS, "9")
    assert Settings.from_env(BASE).max_dial_attempts == 5
    assert Settings.from_env(os.environ | BASE).max_dial_attempts == 9


def test_require_dial_plan_without_plan_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=DIAL_PLAN) as caught:
        Settings.from_env(BASE).require_dial_plan()
    assert caught.value.variable == DIAL_PLAN


@pytest.mark.parametrize("missing", [CALLS_TABLE, DIAL_QUEUE_URL])
def test_required_variables(missing: str) -> None:
    env = {name: value for name, value in BASE.items() if name != missing}
    with pytest.raises(ConfigurationError, match=missing) as caught:
        Settings.from_env(env)
    assert caught.value.variable == missing


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (MAX_DIAL_ATTEMPTS, "-7"),
        (MAX_DIAL_ATTEMPTS, "101"),
        (MAX_DIAL_ATTEMPTS, "five"),
        (MAX_DIAL_ATTEMPTS, "2.5"),
        (LEASE_EXPIRED_GRACE_SECONDS, "-1"),
        (QUEUED_STUCK_SECONDS, "5"),
        (CALL_RECORD_TTL_DAYS, "-30"),
        (CALLS_TABLE, "no spaces allowed"),
        (CALLS_TABLE, "x!"),
        (DIAL_QUEUE_URL, "dial-queue"),
    ],
)
def test_bad_values_name_the_variable_not_the_value(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({**BASE, name: value})
    assert caught.value.variable == name
    assert name in str(caught.value)
    assert value not in str(caught.value)


def test_bad_dial_plan_is_invalid_dial_plan() -> None:
    with pytest.raises(InvalidDialPlan) as caught:
        Settings.from_env({**BASE, DIAL_PLAN: '{"rules": [{"name": "x"}]}'})
    assert caught.value.variable == DIAL_PLAN
    assert "rules[0].targets" in str(caught.value)


def test_blank_optional_values_mean_default() -> None:
    settings = Settings.from_env({**BASE, MAX_DIAL_ATTEMPTS: " ", DIAL_PLAN: "  "})
    assert settings.max_dial_attempts == 5
    assert settings.dial_plan is None


def test_settings_are_frozen() -> None:
    settings = Settings.from_env(BASE)
    with pytest.raises(AttributeError):
        settings.max_dial_attempts = 1  # type: ignore[misc]  # proving immutability
