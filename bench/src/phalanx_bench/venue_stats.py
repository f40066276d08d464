"""What the simulated venue saw: order calls and rate-limit violations (``/admin/stats``), and
its request log (``/admin/requests``) for when the first order of a signal reached it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

__all__ = ["ORDER_ENDPOINTS", "first_order_after", "order_calls", "set_latency", "venue_stats"]

#: the venue calls that place or close a position (one per account per benchmark signal)
ORDER_ENDPOINTS = ("order/placeoso", "order/placeorder", "order/liquidateposition")


async def venue_stats(http: httpx.AsyncClient, sim_url: str) -> dict[str, Any]:
    """The simulator's counters."""
    resp = await http.get(sim_url + "/admin/stats")
    resp.raise_for_status()
    stats: dict[str, Any] = resp.json()
    return stats


def order_calls(stats: dict[str, Any]) -> int:
    """Order calls (:data:`ORDER_ENDPOINTS`) counted in ``stats``."""
    by_endpoint: dict[str, int] = stats.get("byEndpoint") or {}
    wanted = set(ORDER_ENDPOINTS)
    return int(sum(v for k, v in by_endpoint.items() if k.lower() in wanted))


async def first_order_after(
    http: httpx.AsyncClient, sim_url: str, since_epoch_s: float, look_back: int = 2000
) -> float | None:
    """Epoch time of the first order call the venue handled at or after ``since_epoch_s``.

    The venue logs times to the millisecond (truncated): a call in the same millisecond as
    ``since_epoch_s`` counts, and the result is never before ``since_epoch_s``.
    """
    resp = await http.get(sim_url + "/admin/requests", params={"limit": look_back})
    resp.raise_for_status()
    floor_ms = since_epoch_s - 0.001
    times = [
        dt.datetime.fromisoformat(str(r["time"]).replace("Z", "+00:00")).timestamp()
        for r in resp.json()
        if str(r["endpoint"]).lower() in ORDER_ENDPOINTS
    ]
    after = [t for t in times if t > floor_ms]
    return max(since_epoch_s, min(after)) if after else None


async def set_latency(
    http: httpx.AsyncClient, sim_url: str, latency_ms: float, jitter_ms: float
) -> None:
    """Delay every venue answer by ``latency_ms ± jitter_ms`` (0: no delay)."""
    if latency_ms <= 0:
        (await http.delete(sim_url + "/admin/faults")).raise_for_status()
        return
    resp = await http.post(
        sim_url + "/admin/faults", json={"latencyMs": latency_ms, "latencyJitterMs": jitter_ms}
    )
    resp.raise_for_status()
