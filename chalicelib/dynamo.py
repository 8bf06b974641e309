"""Small helpers over the low-level DynamoDB client: attribute-value codec, timestamps, error codes.

The registries talk to the plain ``boto3.client("dynamodb")`` (no resource layer), so the wire shapes are
spelled out here once. Numbers come back as ``int`` when integral, else ``float``; ``Decimal`` never leaks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "CALL_PREFIX",
    "CONDITION_FAILED",
    "MEETING_PREFIX",
    "call_key",
    "error_code",
    "from_item",
    "iso",
    "meeting_key",
    "query_pages",
    "to_attr",
    "to_item",
]

CONDITION_FAILED = "ConditionalCheckFailedException"


def iso(epoch_s: float) -> str:
    """Fixed-width UTC ISO-8601 (millisecond precision), so string order is time order (GSI sort key)."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")


def to_attr(value: Any) -> dict[str, Any]:
    """One Python value as a DynamoDB AttributeValue."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attr(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(v) for v in value]}
    raise TypeError(f"cannot store a {type(value).__name__} in DynamoDB")


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: to_attr(value) for name, value in values.items()}


def _from_attr(attr: Mapping[str, Any]) -> Any:
    kind, raw = next(iter(attr.items()))
    if kind == "S":
        return raw
    if kind == "N":
        try:
            return int(raw)
        except ValueError:
            return float(raw)
    if kind == "BOOL":
        return bool(raw)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _from_attr(v) for k, v in raw.items()}
    if kind == "L":
        return [_from_attr(v) for v in raw]
    if kind == "SS":
        return set(raw)
    raise TypeError(f"unsupported DynamoDB attribute type {kind}")


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A whole item as plain Python values."""
    return {name: _from_attr(attr) for name, attr in item.items()}


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError``, or None for anything else."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return None
    code = response.get("Error", {}).get("Code")
    return code if isinstance(code, str) else None


CALL_PREFIX = "CALL#"
MEETING_PREFIX = "MEETING#"


def call_key(call_id: str) -> dict[str, Any]:
    return {"pk": {"S": CALL_PREFIX + call_id}}


def meeting_key(meeting_id: str) -> dict[str, Any]:
    return {"pk": {"S": MEETING_PREFIX + meeting_id}}


def query_pages(client: Any, **request: Any) -> Iterator[dict[str, Any]]:
    """Every item of a Query, following ``LastEvaluatedKey``."""
    start: dict[str, Any] | None = None
    while True:
        page = client.query(**request, **({"ExclusiveStartKey": start} if start else {}))
        yield from page.get("Items", [])
        start = page.get("LastEvaluatedKey")
        if not start:
            return
