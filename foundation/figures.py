"""Percentiles for the city's record: nearest rank, so every figure is a value that occurred."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


def percentile(values: Iterable[float], p: float) -> float | None:
    """The nearest-rank `p`-th percentile (0 < p <= 100) of `values`; None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def percentile_of_counts(counts: Mapping[int, int], p: float) -> int | None:
    """The same over a histogram (value -> how often it occurred)."""
    total = sum(counts.values())
    if not total:
        return None
    rank, seen = max(1, math.ceil(p / 100 * total)), 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    return None  # pragma: no cover - the loop reaches the total


@dataclass(frozen=True)
class Timing:
    """How long something took, over `count` cases: p50 and p95, and how many met their target
    (`within`; None where there is no target to meet)."""

    count: int
    p50: float | None
    p95: float | None
    within: int | None = None
    target: float | None = None  # the one target all cases share, if they share one


def timing(values: list[float], target: float | None = None) -> Timing:
    within = sum(1 for v in values if v <= target) if target is not None else None
    return Timing(len(values), percentile(values, 50), percentile(values, 95), within, target)
