"""A per-strategy token bucket: ``rate_per_min`` refill, ``burst`` capacity (in memory).

Counted after the secret was checked, so nobody who merely knows a strategy id can use up its
budget. Each ingest replica keeps its own buckets (documented in ADR-0014): with N replicas
behind a balancer the effective limit is up to N times the setting.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token buckets by key.

    Args:
        monotonic: The monotonic clock (seconds).
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str, rate_per_min: float, burst: int) -> float:
        """Take one token; return 0.0 if allowed, else seconds until one is available."""
        if rate_per_min <= 0:
            return 0.0
        now = self._monotonic()
        rate_s = rate_per_min / 60.0
        capacity = float(max(1, burst))
        tokens, last = self._buckets.get(key, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * rate_s)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / rate_s
