"""Announcements in and recordings out: local files and S3 (moto), errors named without content."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.contract import DialRequest, DialTarget
from media_worker.audio import decode_wav, encode_wav
from media_worker.media_apps import MediaAppError
from media_worker.media_files import AudioLibrary, RecordedCall, RecordingStore, lazy_client
from media_worker.outcomes import CallResult, EndReason

PCM = bytes(range(256)) * 10
BUCKET = "dialout-audio"


def _job() -> DialRequest:
    return DialRequest(
        call_id="87654321-4321-4321-1234-111122223333:vc1",
        attempt=2,
        meeting_id="87654321-4321-4321-1234-111122223333",
        media_region="us-east-1",
        attendee_id="11111111-2222-3333-4444-555555555555",
        join_token="secret+token/value=",
        target=DialTarget(name="vc1", host="vc.example.com", from_number="+12065550100"),
        requested_at=datetime(2026, 1, 1, tzinfo=UTC),
        event_id="evt-1",
    )


@pytest.fixture
def s3() -> Any:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_announcement_from_a_file_is_decoded_once(tmp_path: Path) -> None:
    source = tmp_path / "hello.wav"
    source.write_bytes(encode_wav(PCM))
    library = AudioLibrary(s3_client=lambda: None)
    assert library.load(str(source)) == PCM
    source.unlink()
    assert library.load(str(source)) == PCM  # served from the cache


def test_announcement_from_s3(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="prompts/hello.wav", Body=encode_wav(PCM))
    library = AudioLibrary(s3_client=lambda: s3)
    assert library.load(f"s3://{BUCKET}/prompts/hello.wav") == PCM


@pytest.mark.parametrize(
    "source", ["/nonexistent/file.wav", "s3://dialout-audio/missing.wav", "s3://no-key", "/etc/hostname"]
)
def test_unusable_announcements_are_clear_media_app_errors(s3: Any, source: str) -> None:
    library = AudioLibrary(s3_client=lambda: s3)
    with pytest.raises(MediaAppError, match="announcement"):
        library.load(source)


def test_recording_goes_to_disk_without_a_bucket(tmp_path: Path) -> None:
    store = RecordingStore(directory=tmp_path, bucket=None, s3_client=lambda: None)
    location = store.save(_job(), PCM, now=datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    assert Path(location).parent == tmp_path
    assert decode_wav(Path(location).read_bytes()) == PCM
    assert "secret" not in location


def test_recording_is_uploaded_encrypted_with_a_bucket(tmp_path: Path, s3: Any) -> None:
    store = RecordingStore(directory=tmp_path, bucket=BUCKET, s3_client=lambda: s3)
    location = store.save(_job(), PCM)
    assert location.startswith(f"s3://{BUCKET}/recordings/87654321-4321-4321-1234-111122223333/")
    key = location.removeprefix(f"s3://{BUCKET}/")
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    assert decode_wav(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()) == PCM
    assert list(tmp_path.iterdir()) == []


class _EndedCall:
    state = "ended"
    sip_call_id = "abc"

    def __init__(self, recording: bytes | None) -> None:
        self._recording = recording

    async def run(self) -> CallResult:
        return CallResult(
            end_reason=EndReason.REMOTE_BYE,
            connected=True,
            sip_status=None,
            detail="",
            sip_call_id="abc",
            codec="PCMU",
            suite="AES_CM_128_HMAC_SHA1_80",
            setup_latency_s=0.1,
            duration_s=1.0,
            timeline={},
            recording=self._recording,
        )

    def hangup(self, reason: EndReason) -> None:
        return None

    def snapshot(self) -> dict[str, Any]:
        return {}


def test_recorded_call_stores_what_the_call_recorded(tmp_path: Path) -> None:
    stored: list[str] = []
    store = RecordingStore(directory=tmp_path, bucket=None, s3_client=lambda: None)
    result = asyncio.run(RecordedCall(_EndedCall(PCM), _job(), store, on_stored=stored.append).run())
    assert result.end_reason is EndReason.REMOTE_BYE
    assert len(stored) == 1
    assert decode_wav(Path(stored[0]).read_bytes()) == PCM
    asyncio.run(RecordedCall(_EndedCall(None), _job(), store, on_stored=stored.append).run())
    assert len(stored) == 1


def test_lazy_client_is_created_once() -> None:
    get = lazy_client("s3")
    assert get() is get()
