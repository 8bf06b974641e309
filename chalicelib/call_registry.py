"""Call records in DynamoDB: the conditional writes that move a call through its state machine.

The states, the transition table and the record type live in ``chalicelib.call_states``; this module only
turns each transition into one ``UpdateItem`` whose ``ConditionExpression`` encodes it, so duplicate,
reordered and concurrent events or messages cannot produce a second attendee, a second job or a
backwards transition.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, cast

from chalicelib.call_states import (
    ACTIVE_STATES,
    MEETING_INDEX,
    STATE_INDEX,
    TRANSITIONS,
    WORKER_STATES,
    CallRecord,
    CallState,
    ClaimResult,
    Desired,
    TransitionRejected,
    new_call_item,
    states_condition,
)
from chalicelib.contract import DialRequest, DialTarget
from chalicelib.dynamo import (
    CALL_PREFIX,
    CONDITION_FAILED,
    call_key,
    error_code,
    iso,
    meeting_key,
    query_pages,
    to_attr,
    to_item,
)

__all__ = [
    "CallRecord",
    "CallRegistry",
    "ClaimResult",
    "Desired",
    "TransitionRejected",
]


class CallRegistry:
    """Conditional reads and writes of call items. ``clock`` returns epoch seconds."""

    def __init__(
        self, client: Any, table: str, *, clock: Callable[[], float], record_ttl_s: float = 30 * 86_400
    ) -> None:
        self._client = client
        self._table = table
        self._clock = clock
        self._ttl_s = record_ttl_s

    # -- reads ---------------------------------------------------------------------------------------------

    def get(self, call_id: str) -> CallRecord | None:
        reply = self._client.get_item(TableName=self._table, Key=call_key(call_id), ConsistentRead=True)
        return CallRecord.from_item(reply["Item"]) if "Item" in reply else None

    def calls_for_meeting(self, meeting_id: str) -> list[CallRecord]:
        items = query_pages(
            self._client,
            TableName=self._table,
            IndexName=MEETING_INDEX,
            KeyConditionExpression="meeting_id = :m AND begins_with(pk, :p)",
            ExpressionAttributeValues={":m": to_attr(meeting_id), ":p": to_attr(CALL_PREFIX)},
        )
        return [CallRecord.from_item(i) for i in items]

    def calls_in_state(
        self, state: CallState, *, updated_before: float | None = None
    ) -> Iterator[CallRecord]:
        """Calls in ``state`` (via the state index), optionally only those last written before a time."""
        condition = "#state = :s"
        values = {":s": to_attr(state)}
        if updated_before is not None:
            condition += " AND updated_at < :u"
            values[":u"] = to_attr(iso(updated_before))
        for item in query_pages(
            self._client,
            TableName=self._table,
            IndexName=STATE_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=values,
        ):
            yield CallRecord.from_item(item)

    # -- control plane -------------------------------------------------------------------------------------

    def claim(
        self,
        meeting_id: str,
        target: DialTarget,
        *,
        grace_s: float,
        event_id: str,
        media_region: str,
        external_meeting_id: str | None,
    ) -> ClaimResult:
        """Create the call in ``queued`` unless it exists or the meeting is already recorded as ended.

        Done before CreateAttendee: only the winner creates an attendee. One transaction checks the meeting
        item (no ``ended_at_ms``) and puts the call (``attribute_not_exists(pk)``).
        """
        claim_id = uuid.uuid4().hex
        item = new_call_item(
            meeting_id,
            target,
            claim_id=claim_id,
            now_iso=iso(self._clock()),
            grace_s=grace_s,
            event_id=event_id,
            media_region=media_region,
            external_meeting_id=external_meeting_id,
        )
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self._table,
                            "Key": meeting_key(meeting_id),
                            "ConditionExpression": "attribute_not_exists(ended_at_ms)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": to_item(item),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except Exception as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = getattr(exc, "response", {}).get("CancellationReasons", [])
            codes = [r.get("Code") for r in reasons]
            if codes and codes[0] == "ConditionalCheckFailed":
                return ClaimResult(None, "meeting_ended")
            return ClaimResult(None, "exists")
        return ClaimResult(claim_id)

    def attach_attendee(
        self, call_id: str, claim_id: str, *, attendee_id: str, external_user_id: str, job: DialRequest
    ) -> CallRecord | None:
        """Store attendee and job on a claimed call that has neither yet; None if that no longer holds."""
        return self._write(
            call_id,
            "queued",
            sets={"attendee_id": attendee_id, "external_user_id": external_user_id, "job": job.to_json()},
            condition="claim_id = :claim AND #state = :queued AND attribute_not_exists(attendee_id)",
            values={":claim": to_attr(claim_id), ":queued": to_attr("queued")},
        )

    def release_claim(self, call_id: str, claim_id: str) -> bool:
        """Undo a claim that never got an attendee, so a retried event can claim again."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=call_key(call_id),
                ConditionExpression="claim_id = :c AND attribute_not_exists(attendee_id)",
                ExpressionAttributeValues={":c": to_attr(claim_id)},
            )
        except Exception as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
            return False
        return True

    def request_hangup(self, call_id: str, reason: str) -> CallRecord | None:
        """desired := ended (first reason wins). The updated record, or None if already ended/unwanted."""
        condition, values = states_condition("a", ACTIVE_STATES)
        return self._write(
            call_id,
            None,
            sets={"desired": "ended", "hangup_reason": reason},
            condition=f"desired = :connected AND {condition}",
            values={**values, ":connected": to_attr("connected")},
        )

    def requeue(self, seen: CallRecord, job: DialRequest | None) -> CallRecord | None:
        """Back to ``queued`` with attempts+1 (sweeper), if the call is unchanged since ``seen`` was read."""
        sets: dict[str, Any] = {"attempts": seen.attempts + 1}
        if job is not None:
            sets["job"] = job.to_json()
        return self._write(
            seen.call_id,
            "queued",
            sets=sets,
            removes=("worker_id", "lease_expires_at"),
            condition="version = :seen",
            values={":seen": to_attr(seen.version)},
        )

    def finish_unchanged(self, seen: CallRecord, state: Literal["ended", "failed"], reason: str) -> bool:
        """End or fail a call nobody is working on (sweeper), if it is unchanged since ``seen`` was read."""
        record = self._write(
            seen.call_id,
            state,
            sets=self._final_sets(reason),
            condition="version = :seen",
            values={":seen": to_attr(seen.version)},
        )
        return record is not None

    def record_attendee_status(self, call_id: str, attendee_id: str, status: str, event_ms: int) -> bool:
        """Note what Chime reported about our attendee; older reports than the stored one are ignored."""
        record = self._write(
            call_id,
            None,
            sets={"attendee_status": status, "attendee_event_ms": event_ms},
            condition=(
                "attendee_id = :aid AND (attribute_not_exists(attendee_event_ms) OR attendee_event_ms < :t)"
            ),
            values={":aid": to_attr(attendee_id), ":t": to_attr(event_ms)},
        )
        return record is not None

    # -- media worker --------------------------------------------------------------------------------------

    def claim_for_dialing(
        self, call_id: str, worker_id: str, lease_s: float, *, attempt: int | None = None
    ) -> CallRecord | None:
        """queued -> dialing for this worker, with a lease; None if the job is stale, duplicate or unwanted.

        Pass the job's ``attempt`` so an old message for a call that has since been re-queued cannot win.
        """
        condition = "#state = :queued AND desired = :connected AND attribute_exists(attendee_id)"
        values = {":queued": to_attr("queued"), ":connected": to_attr("connected")}
        if attempt is not None:
            condition += " AND attempts = :attempt"
            values[":attempt"] = to_attr(attempt)
        return self._write(
            call_id,
            "dialing",
            sets={"worker_id": worker_id, "lease_expires_at": self._clock() + lease_s},
            condition=condition,
            values=values,
        )

    def restart_dialing(
        self, call_id: str, worker_id: str, lease_s: float, *, max_attempts: int
    ) -> CallRecord:
        """The worker re-dials a dropped leg itself: -> dialing, attempts+1, while attempts remain."""
        return self._worker_write(
            call_id,
            worker_id,
            "dialing",
            sets={"lease_expires_at": self._clock() + lease_s},
            adds={"attempts": 1},
            condition="desired = :connected AND attempts < :max",
            values={":connected": to_attr("connected"), ":max": to_attr(max_attempts)},
        )

    def mark_ringing(self, call_id: str, worker_id: str) -> CallRecord:
        return self._worker_write(call_id, worker_id, "ringing")

    def mark_connected(self, call_id: str, worker_id: str, sip_call_id: str) -> CallRecord:
        now = iso(self._clock())
        return self._worker_write(
            call_id, worker_id, "connected", sets={"sip_call_id": sip_call_id, "connected_at": now}
        )

    def heartbeat(self, call_id: str, worker_id: str, lease_s: float) -> Desired:
        """Extend the lease; returns what the control plane wants. Raises TransitionRejected if lease lost."""
        record = self._worker_write(
            call_id, worker_id, None, sets={"lease_expires_at": self._clock() + lease_s}, states=WORKER_STATES
        )
        return record.desired

    def release_lease(self, call_id: str, worker_id: str) -> None:
        """Give the call back (a draining worker): its lease expires now, so the sweeper re-dials it from
        another worker. Raises TransitionRejected if the lease was already lost."""
        self.heartbeat(call_id, worker_id, 0.0)

    def mark_ending(self, call_id: str, worker_id: str) -> CallRecord:
        return self._worker_write(call_id, worker_id, "ending")

    def mark_ended(
        self,
        call_id: str,
        worker_id: str,
        reason: str,
        sip_status: int | None = None,
        media_stats: Mapping[str, float | int | str] | None = None,
    ) -> CallRecord:
        sets = self._final_sets(reason)
        if sip_status is not None:
            sets["sip_status"] = sip_status
        if media_stats is not None:
            sets["media_stats"] = dict(media_stats)
        return self._worker_write(call_id, worker_id, "ended", sets=sets)

    def mark_failed(
        self, call_id: str, reason: str, *, worker_id: str | None = None, sip_status: int | None = None
    ) -> CallRecord:
        """-> failed. With ``worker_id``: that worker must hold the call. Without: nobody may hold it."""
        sets = self._final_sets(reason)
        if sip_status is not None:
            sets["sip_status"] = sip_status
        if worker_id is not None:
            return self._worker_write(call_id, worker_id, "failed", sets=sets)
        record = self._write(call_id, "failed", sets=sets, condition="attribute_not_exists(worker_id)")
        if record is None:
            raise TransitionRejected(call_id, "failed", self.get(call_id))
        return record

    def _final_sets(self, reason: str) -> dict[str, Any]:
        now = self._clock()
        return {"end_reason": reason, "ended_at": iso(now), "expires_at": int(now + self._ttl_s)}

    def _worker_write(
        self,
        call_id: str,
        worker_id: str,
        to_state: CallState | None,
        *,
        sets: Mapping[str, Any] | None = None,
        adds: Mapping[str, int] | None = None,
        condition: str = "",
        values: Mapping[str, Any] | None = None,
        states: frozenset[CallState] | None = None,
    ) -> CallRecord:
        allowed = states if states is not None else TRANSITIONS[cast(CallState, to_state)] & WORKER_STATES
        state_condition, state_values = states_condition("w", allowed)
        full = f"worker_id = :worker AND {state_condition}" + (f" AND {condition}" if condition else "")
        record = self._write(
            call_id,
            to_state,
            sets=sets,
            adds=adds,
            condition=full,
            values={**state_values, ":worker": to_attr(worker_id), **(values or {})},
            check_transition=False,
        )
        if record is None:
            raise TransitionRejected(call_id, to_state or "(same state)", self.get(call_id))
        return record

    def _write(
        self,
        call_id: str,
        to_state: CallState | None,
        *,
        sets: Mapping[str, Any] | None = None,
        adds: Mapping[str, int] | None = None,
        removes: tuple[str, ...] = (),
        condition: str,
        values: Mapping[str, Any] | None = None,
        check_transition: bool = True,
    ) -> CallRecord | None:
        """One conditional UpdateItem. Returns the new record, or None when the condition did not hold."""
        assignments = {**(sets or {}), "updated_at": iso(self._clock())}
        names = {"#state": "state"}
        attr_values = dict(values or {})
        clauses = []
        if to_state is not None:
            assignments["state"] = to_state
            if check_transition:
                state_condition, state_values = states_condition("t", TRANSITIONS[to_state])
                condition = f"({condition}) AND {state_condition}" if condition else state_condition
                attr_values.update(state_values)
        for i, (name, value) in enumerate(assignments.items()):
            names[f"#s{i}"] = name
            attr_values[f":s{i}"] = to_attr(value)
            clauses.append(f"#s{i} = :s{i}")
        clauses.append("version = version + :one")
        for i, (name, amount) in enumerate((adds or {}).items()):
            names[f"#n{i}"] = name
            attr_values[f":n{i}"] = to_attr(amount)
            clauses.append(f"#n{i} = #n{i} + :n{i}")
        attr_values[":one"] = to_attr(1)
        if "#state" not in condition:
            del names["#state"]
        expression = "SET " + ", ".join(clauses)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        try:
            reply = self._client.update_item(
                TableName=self._table,
                Key=call_key(call_id),
                UpdateExpression=expression,
                ConditionExpression=f"attribute_exists(pk) AND ({condition})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=attr_values,
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
            return None
        return CallRecord.from_item(reply["Attributes"])
