"""Audio files a call plays or leaves behind: announcements in, recordings out.

Announcements come from a local WAV path or ``s3://bucket/key`` and are decoded once per process (most calls
of a deployment play the same few files). Recordings are written as 8 kHz WAV under ``RECORDINGS_DIR`` and,
when ``RECORDINGS_BUCKET`` is set, uploaded to S3 with server-side encryption. Both do blocking I/O, so the
call layer runs them in a thread, never on the media loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from chalicelib.contract import DialRequest

from .audio import WavError, decode_wav, encode_wav
from .call_job import DialedCall
from .media_apps import MediaAppError
from .outcomes import CallResult, EndReason

__all__ = ["AudioLibrary", "RecordedCall", "RecordingStore", "lazy_client"]

_MAX_ANNOUNCEMENT_BYTES: Final = 50 * 1024 * 1024


def lazy_client(service: str) -> Callable[[], Any]:
    """A thread-safe, created-on-first-use boto3 client factory (boto3 sessions are not thread-safe)."""
    lock = threading.Lock()
    client: list[Any] = []

    def get() -> Any:
        with lock:
            if not client:
                import boto3

                client.append(boto3.client(service))
            return client[0]

    return get


def _split_s3(source: str) -> tuple[str, str]:
    parts = urlsplit(source)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket or not key:
        raise MediaAppError("an S3 announcement source must look like s3://bucket/key")
    return bucket, key


class AudioLibrary:
    """Loads announcement audio (WAV path or S3 object) as PCM, caching the most recent ``max_entries``."""

    def __init__(self, *, s3_client: Callable[[], Any], max_entries: int = 32) -> None:
        self._s3_client = s3_client
        self._max_entries = max_entries
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, source: str) -> bytes:
        """PCM for ``source``; raises ``MediaAppError`` naming the source's kind, never its content."""
        with self._lock:
            if source in self._cache:
                self._cache.move_to_end(source)
                return self._cache[source]
        pcm = self._read(source)
        with self._lock:
            self._cache[source] = pcm
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        return pcm

    def _read(self, source: str) -> bytes:
        try:
            if source.startswith("s3://"):
                bucket, key = _split_s3(source)
                reply = self._s3_client().get_object(Bucket=bucket, Key=key)
                data: bytes = reply["Body"].read(_MAX_ANNOUNCEMENT_BYTES + 1)
            else:
                path = Path(source)
                if path.stat().st_size > _MAX_ANNOUNCEMENT_BYTES:
                    raise MediaAppError("announcement file is larger than 50 MiB")
                data = path.read_bytes()
            if len(data) > _MAX_ANNOUNCEMENT_BYTES:
                raise MediaAppError("announcement object is larger than 50 MiB")
            return decode_wav(data)
        except (OSError, WavError) as exc:
            raise MediaAppError(f"announcement audio could not be read: {type(exc).__name__}") from None
        except MediaAppError:
            raise
        except Exception as exc:  # botocore's ClientError and friends: report the kind, not the text
            raise MediaAppError(f"announcement audio could not be fetched: {type(exc).__name__}") from None


class RecordingStore:
    """Writes a call's recording to disk and, with a bucket configured, to S3."""

    def __init__(
        self, *, directory: Path, bucket: str | None, s3_client: Callable[[], Any], prefix: str = "recordings"
    ) -> None:
        self._directory = directory
        self._bucket = bucket
        self._s3_client = s3_client
        self._prefix = prefix.strip("/")

    def save(self, job: DialRequest, pcm: bytes, *, now: datetime | None = None) -> str:
        """Store ``pcm`` for ``job``; returns where it went (``s3://...`` or a path)."""
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        safe_call = job.call_id.replace(":", "_").replace("#", "_")
        name = f"{safe_call}-a{job.attempt}-{stamp}.wav"
        wav = encode_wav(pcm)
        self._directory.mkdir(parents=True, exist_ok=True)
        path = self._directory / name
        path.write_bytes(wav)
        if self._bucket is None:
            return str(path)
        key = f"{self._prefix}/{job.meeting_id}/{name}"
        self._s3_client().put_object(
            Bucket=self._bucket, Key=key, Body=wav, ContentType="audio/wav", ServerSideEncryption="AES256"
        )
        path.unlink(missing_ok=True)  # uploaded: the task's disk is not where recordings live
        return f"s3://{self._bucket}/{key}"


class RecordedCall:
    """A call whose recording, if its media app made one, is stored when the call ends."""

    def __init__(
        self,
        call: DialedCall,
        job: DialRequest,
        store: RecordingStore,
        on_stored: Callable[[str], None] = lambda location: None,
    ) -> None:
        self._call = call
        self._job = job
        self._store = store
        self._on_stored = on_stored

    def __repr__(self) -> str:
        return f"RecordedCall({self._call!r})"

    @property
    def state(self) -> str:
        return self._call.state

    @property
    def sip_call_id(self) -> str | None:
        return self._call.sip_call_id

    def hangup(self, reason: EndReason) -> None:
        self._call.hangup(reason)

    def snapshot(self) -> dict[str, Any]:
        return self._call.snapshot()

    async def run(self) -> CallResult:
        result = await self._call.run()
        if result.recording:
            location = await asyncio.to_thread(self._store.save, self._job, result.recording)
            self._on_stored(location)
        return result
