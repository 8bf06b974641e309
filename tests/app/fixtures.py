"""Test helpers for control-plane tests: load the event fixtures in tests/fixtures/events/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

EVENTS_DIR: Final = Path(__file__).resolve().parent.parent / "fixtures" / "events"


def load_event(name: str) -> dict[str, Any]:
    """The event fixture ``<name>.json`` as a fresh dict (callers may mutate it)."""
    data = json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise TypeError(f"fixture {name} is not a JSON object")
    return data


def event_names(prefix: str = "") -> list[str]:
    """Fixture names (without ``.json``) starting with ``prefix``, sorted."""
    return sorted(p.stem for p in EVENTS_DIR.glob(f"{prefix}*.json"))
