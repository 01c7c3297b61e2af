"""Benchmark results: one value per (metric, target), plus the server CPU spent on it."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass
class Result:
    """One measurement: ``value`` in ``unit``; ``cpu_us`` is server CPU per operation in us."""

    value: float | None
    unit: str
    cpu_us: float | None = None
    note: str = ""

    @classmethod
    def failed(cls, unit: str, why: str) -> Result:
        return cls(None, unit, None, why)


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]
