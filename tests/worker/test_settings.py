"""Worker settings: defaults, validation errors that name the variable, no secret echo."""

from __future__ import annotations

import pytest

from media_worker.settings import SettingsError, WorkerSettings


def test_defaults_are_usable() -> None:
    settings = WorkerSettings.from_env({})
    assert settings.max_calls == 200
    assert settings.rtp_port_max - settings.rtp_port_min + 1 >= 2 * settings.max_calls
    assert settings.sip_ca_file is None


def test_each_bad_variable_is_named() -> None:
    with pytest.raises(SettingsError) as excinfo:
        WorkerSettings.from_env({"MAX_CALLS": "many", "MEDIA_PUBLIC_IP": "not-an-ip"})
    message = str(excinfo.value)
    assert "MAX_CALLS" in message
    assert "MEDIA_PUBLIC_IP" in message
    assert "not-an-ip" not in message


def test_port_range_must_fit_the_call_limit() -> None:
    with pytest.raises(SettingsError, match="RTP port range"):
        WorkerSettings.from_env({"MAX_CALLS": "100", "RTP_PORT_MIN": "20000", "RTP_PORT_MAX": "20099"})


def test_digest_password_is_never_echoed() -> None:
    with pytest.raises(SettingsError) as excinfo:
        WorkerSettings.from_env({"SIP_DIGEST_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in str(excinfo.value)
    settings = WorkerSettings.from_env({"SIP_DIGEST_USERNAME": "u", "SIP_DIGEST_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in repr(settings)


def test_service_mode_needs_queue_and_table() -> None:
    with pytest.raises(SettingsError, match="DIAL_QUEUE_URL: required; CALLS_TABLE: required"):
        WorkerSettings.from_env({}).require_service()
