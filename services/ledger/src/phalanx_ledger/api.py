"""The ledger's HTTP API: positions, per-account view and health (decimals as strings).

- ``GET /positions[?account_id=N]`` → ``{"positions": [Position, ...]}``;
- ``GET /positions/{account_id}`` → ``{"account_id", "positions": [...], "orders":
  {"accepted", "rejected"}}`` (only that account's positions, empty when it has none);
- ``GET /healthz`` → ``{"status": "ok" | "replaying", "fills_applied", "duplicate_fills",
  "unattributed_fills", "streams": {name: {"last_seq", "caught_up"}}}`` (liveness: always 200);
- ``GET /readyz`` → 200 once NATS is connected and the replay reached the end of every stream,
  else 503; ``GET /metrics`` → Prometheus (docs/metrics.md).

A Position is ``{"account_id", "symbol", "contract_id", "net_pos", "avg_price" (string or
null), "realized_pnl" (string, price points * contracts), "fill_count", "bought", "sold",
"last_fill_id", "updated_ns"}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response

from phalanx_common.codec import encode
from phalanx_common.health import Readiness, add_readiness_route
from phalanx_common.metrics import CollectorRegistry, add_metrics_route
from phalanx_ledger.follower import StreamFollower
from phalanx_ledger.projection import PositionsProjection

__all__ = ["create_app"]


def _json(body: Any) -> Response:
    return Response(content=encode(body), media_type="application/json")


def create_app(
    projection: PositionsProjection,
    followers: Sequence[StreamFollower],
    registry: CollectorRegistry | None = None,
    readiness: Readiness | None = None,
) -> FastAPI:
    """Assemble the ledger API over a projection and the followers that feed it.

    Args:
        projection: The positions projection (read only here).
        followers: The stream followers, for health.
        registry: Served at ``GET /metrics`` when given.
        readiness: Served at ``GET /readyz`` when given.
    """
    app = FastAPI(
        title="Phalanx ledger",
        version="0.1.0",
        description="Positions and realized P&L per account and contract, rebuilt from the "
        "FILLS and ORDERS streams.",
    )

    @app.get("/positions", tags=["positions"])
    async def all_positions(account_id: int | None = None) -> Response:
        """Every position, or one account's with ``?account_id=``."""
        return _json({"positions": projection.positions(account_id)})

    @app.get("/positions/{account_id}", tags=["positions"])
    async def account_positions(account_id: int) -> Response:
        """One account's positions and order counts."""
        return _json(
            {
                "account_id": account_id,
                "positions": projection.positions(account_id),
                "orders": projection.order_counts(account_id),
            }
        )

    @app.get("/healthz", tags=["health"])
    async def healthz() -> Response:
        """``ok`` once the start-up replay reached the end of every stream."""
        caught_up = all(f.caught_up for f in followers)
        return _json(
            {
                "status": "ok" if caught_up else "replaying",
                "fills_applied": projection.fills_applied,
                "duplicate_fills": projection.duplicate_fills,
                "unattributed_fills": projection.unattributed_fills,
                "streams": {
                    f.name: {"last_seq": f.last_seq, "caught_up": f.caught_up} for f in followers
                },
            }
        )

    if registry is not None:
        add_metrics_route(app, registry)
    if readiness is not None:
        add_readiness_route(app, readiness)
    return app
