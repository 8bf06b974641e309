"""A PNG timeline of the demo's calls: setup and connected spans, milestones, and received audio levels.

One row per call: the span from the meeting event to the 200 OK is drawn amber (setup), from the 200 OK to the
end green (connected), with a tick for each milestone (event, attendee, job, INVITE, 200 OK, first media,
end). Inside the connected span, the audio level the Voice Connector emulator heard is plotted per window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from PIL import Image, ImageDraw, ImageFont

__all__ = ["CallTimeline", "render_timeline"]

_Font = ImageFont.ImageFont | ImageFont.FreeTypeFont

_WIDTH: Final = 1400
_LABEL_WIDTH: Final = 260
_ROW: Final = 84
_TOP: Final = 48
_BOTTOM: Final = 56
_RIGHT: Final = 30
_SETUP: Final = (240, 176, 64)
_CONNECTED: Final = (120, 190, 120)
_LEVEL: Final = (20, 90, 40)
_MILESTONE: Final = (40, 40, 40)
_GRID: Final = (225, 225, 225)
_ORDER: Final = ("event", "attendee", "job", "invite", "answered", "first_media", "ended")
_SHORT: Final = {
    "event": "E",
    "attendee": "A",
    "job": "J",
    "invite": "I",
    "answered": "200",
    "first_media": "M",
}


@dataclass(frozen=True, slots=True)
class CallTimeline:
    """What to draw for one call; times are seconds since the start of the run."""

    label: str
    milestones: Mapping[str, float]
    outcome: str
    levels: Sequence[float] = field(default_factory=tuple)
    """Received audio level per window (0..1), the first window starting at ``levels_start``."""
    levels_start: float = 0.0
    level_window_s: float = 0.1


def _x(t: float, span: float) -> int:
    return _LABEL_WIDTH + round((_WIDTH - _LABEL_WIDTH - _RIGHT) * max(0.0, t) / span)


def _draw_axis(draw: ImageDraw.ImageDraw, span: float, height: int, font: _Font) -> None:
    step = max(1, math.ceil(span / 20))
    for second in range(0, math.ceil(span) + 1, step):
        x = _x(second, span)
        draw.line([(x, _TOP - 6), (x, height - _BOTTOM)], fill=_GRID)
        draw.text((x - 6, height - _BOTTOM + 6), f"{second}s", fill=_MILESTONE, font=font)


def _draw_row(draw: ImageDraw.ImageDraw, call: CallTimeline, top: int, span: float, font: _Font) -> None:
    draw.text((10, top + 14), call.label, fill=_MILESTONE, font=font)
    draw.text((10, top + 36), call.outcome, fill=(110, 110, 110), font=font)
    start = call.milestones.get("event", 0.0)
    answered = call.milestones.get("answered")
    ended = call.milestones.get("ended", span)
    band_top, band_bottom = top + 12, top + _ROW - 20
    if answered is None:
        draw.rectangle([(_x(start, span), band_top), (_x(ended, span), band_bottom)], fill=_SETUP)
    else:
        draw.rectangle([(_x(start, span), band_top), (_x(answered, span), band_bottom)], fill=_SETUP)
        draw.rectangle([(_x(answered, span), band_top), (_x(ended, span), band_bottom)], fill=_CONNECTED)
    points = [
        (
            _x(call.levels_start + i * call.level_window_s, span),
            band_bottom - round((band_bottom - band_top) * min(1.0, max(0.0, level))),
        )
        for i, level in enumerate(call.levels)
    ]
    if len(points) > 1:
        draw.line(points, fill=_LEVEL, width=2)
    last_label_x, lane = -100, 0
    for name in _ORDER:
        when = call.milestones.get(name)
        if when is None:
            continue
        x = _x(when, span)
        draw.line([(x, band_top - 6), (x, band_bottom + 4)], fill=_MILESTONE, width=1)
        if name in _SHORT:
            # Milestones a few ms apart share a pixel column: stack their labels instead of overprinting.
            lane = lane + 1 if x - last_label_x < 24 else 0
            draw.text((x + 2 + 24 * lane, band_bottom + 3), _SHORT[name], fill=_MILESTONE, font=font)
            last_label_x = x


def render_timeline(calls: Sequence[CallTimeline], path: Path, *, title: str) -> Path:
    """Draw every call on one time axis and write the PNG to ``path``."""
    span = max([1.0, *(t for call in calls for t in call.milestones.values())]) * 1.02
    height = _TOP + _BOTTOM + _ROW * max(1, len(calls))
    image = Image.new("RGB", (_WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    draw.text((10, 12), title, fill=_MILESTONE, font=font)
    legend = "amber: setup (event -> 200 OK)   green: connected   line: audio level heard by the connector"
    draw.text((_LABEL_WIDTH, 12), legend, fill=(90, 90, 90), font=font)
    _draw_axis(draw, span, height, font)
    for row, call in enumerate(calls):
        _draw_row(draw, call, _TOP + row * _ROW, span, font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
