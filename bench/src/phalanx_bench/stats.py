"""Latency summaries: p50/p90/p99/max of a list of seconds (nearest-rank quantiles)."""

from __future__ import annotations

import math

__all__ = ["quantile", "summary"]


def quantile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (``0 < q <= 1``) of ``values`` (not empty)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def summary(values: list[float], digits: int = 4) -> dict[str, float]:
    """``{"p50_s", "p90_s", "p99_s", "max_s"}`` of ``values`` in seconds."""
    return {
        "p50_s": round(quantile(values, 0.50), digits),
        "p90_s": round(quantile(values, 0.90), digits),
        "p99_s": round(quantile(values, 0.99), digits),
        "max_s": round(max(values), digits),
    }
