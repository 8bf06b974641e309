"""A MOS estimate from network figures, after the ITU-T G.107 E-model simplified for G.711 (Ie = 0).

This is an estimate for dashboards and alarms, not a perceptual measurement: it folds one-way delay, jitter
(treated as extra delay a jitter buffer would add) and packet loss into the transmission rating R, then maps R
to MOS with G.107 Annex B.
"""

from __future__ import annotations

__all__ = ["estimate_mos"]

_R0 = 93.2  # G.107 default basic signal-to-noise rating with default parameters
_BPL_G711 = 25.1  # G.113 Appendix I packet-loss robustness of G.711 with PLC


def estimate_mos(*, rtt_s: float | None, jitter_s: float, loss_fraction: float) -> float:
    """MOS-CQE in [1.0, 4.5] for a G.711 stream."""
    one_way_ms = (rtt_s or 0.0) * 500.0 + 2.0 * jitter_s * 1000.0 + 10.0
    delay_impairment = 0.024 * one_way_ms + (0.11 * (one_way_ms - 177.3) if one_way_ms > 177.3 else 0.0)
    loss_pct = max(0.0, min(1.0, loss_fraction)) * 100.0
    equipment_impairment = 95.0 * loss_pct / (loss_pct + _BPL_G711)
    rating = _R0 - delay_impairment - equipment_impairment
    if rating <= 0:
        return 1.0
    if rating >= 100:
        return 4.5
    return round(1 + 0.035 * rating + 7e-6 * rating * (rating - 60) * (100 - rating), 2)
