"""Capacity and latency benchmarks: they print figures and ratios, and never assert on time."""

__all__: list[str] = []
