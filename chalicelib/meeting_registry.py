"""Meeting items (``pk = "MEETING#<meeting_id>"``): whether the meeting ended, and which humans are in it.

``humans`` maps each human attendee id to ``{"present": bool, "at_ms": <event timestamp>}``. An update only
lands if its event is newer than the stored one for that attendee, so out-of-order delivery resolves by event
time: a Left at t=5 that arrives after a Joined at t=7 leaves the attendee present.
``last_human_left_ms`` only ever grows (conditional ``<``), so concurrent departures keep the latest one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.dynamo import CONDITION_FAILED, error_code, from_item, meeting_key, to_attr

__all__ = ["HumanPresence", "MeetingRecord", "MeetingRegistry", "PresenceUpdate"]


@dataclass(frozen=True, slots=True)
class HumanPresence:
    present: bool
    at_ms: int


@dataclass(frozen=True, slots=True)
class MeetingRecord:
    meeting_id: str
    ended_at_ms: int | None = None
    humans: Mapping[str, HumanPresence] = field(default_factory=dict)
    last_human_left_ms: int | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> MeetingRecord:
        values = from_item(item)
        humans = {
            attendee_id: HumanPresence(bool(entry["present"]), int(entry["at_ms"]))
            for attendee_id, entry in (values.get("humans") or {}).items()
        }
        return cls(
            meeting_id=values["meeting_id"],
            ended_at_ms=values.get("ended_at_ms"),
            humans=humans,
            last_human_left_ms=values.get("last_human_left_ms"),
        )

    @property
    def present_humans(self) -> frozenset[str]:
        return frozenset(a for a, p in self.humans.items() if p.present)

    @property
    def ended(self) -> bool:
        return self.ended_at_ms is not None


@dataclass(frozen=True, slots=True)
class PresenceUpdate:
    """``applied`` is False when a newer event for the same attendee was already stored."""

    applied: bool
    meeting: MeetingRecord


class MeetingRegistry:
    def __init__(
        self, client: Any, table: str, *, clock: Callable[[], float], record_ttl_s: float = 30 * 86_400
    ) -> None:
        self._client = client
        self._table = table
        self._clock = clock
        self._ttl_s = record_ttl_s

    def get(self, meeting_id: str) -> MeetingRecord | None:
        reply = self._client.get_item(TableName=self._table, Key=meeting_key(meeting_id), ConsistentRead=True)
        return MeetingRecord.from_item(reply["Item"]) if "Item" in reply else None

    def mark_ended(self, meeting_id: str, ended_at_ms: int, event_id: str) -> bool:
        """Record the end (event time). True the first time; a late MeetingStarted then claims nothing."""
        return self._update(
            meeting_id,
            "SET ended_at_ms = :t, ended_event_id = :e, meeting_id = :m, "
            "expires_at = if_not_exists(expires_at, :x)",
            "attribute_not_exists(ended_at_ms)",
            {":t": ended_at_ms, ":e": event_id, ":m": meeting_id, ":x": self._expiry()},
        )

    def record_presence(self, meeting_id: str, attendee_id: str, present: bool, at_ms: int) -> PresenceUpdate:
        """Apply one human Joined/Left/Dropped/Deleted event, newest event time wins per attendee."""
        # Step 1: the map must exist before a nested path can be written (one expression may not do both).
        self._update(
            meeting_id,
            "SET humans = if_not_exists(humans, :empty), meeting_id = :m, "
            "expires_at = if_not_exists(expires_at, :x)",
            None,
            {":empty": {}, ":m": meeting_id, ":x": self._expiry()},
        )
        applied = self._update(
            meeting_id,
            "SET humans.#a = :entry",
            "attribute_not_exists(humans.#a) OR humans.#a.at_ms < :t",
            {":entry": {"present": present, "at_ms": at_ms}, ":t": at_ms},
            names={"#a": attendee_id},
        )
        if applied and not present:
            self._update(
                meeting_id,
                "SET last_human_left_ms = :t",
                "attribute_not_exists(last_human_left_ms) OR last_human_left_ms < :t",
                {":t": at_ms},
            )
        record = self.get(meeting_id)
        return PresenceUpdate(applied, record if record is not None else MeetingRecord(meeting_id))

    def _expiry(self) -> int:
        return int(self._clock() + self._ttl_s)

    def _update(
        self,
        meeting_id: str,
        expression: str,
        condition: str | None,
        values: Mapping[str, Any],
        *,
        names: Mapping[str, str] | None = None,
    ) -> bool:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": meeting_key(meeting_id),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": {k: to_attr(v) for k, v in values.items()},
        }
        if condition is not None:
            kwargs["ConditionExpression"] = condition
        if names:
            kwargs["ExpressionAttributeNames"] = dict(names)
        try:
            self._client.update_item(**kwargs)
        except Exception as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
            return False
        return True
