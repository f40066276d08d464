"""The ledger's HTTP API: positions, per-account view and health (decimals as strings).

- ``GET /positions[?account_id=N]`` → ``{"positions": [Position, ...]}``;
- ``GET /positions/{account_id}`` → ``{"account_id", "positions": [...], "orders":
  {"accepted", "rejected"}}`` (only that account's positions, empty when it has none);
- ``GET /healthz`` → ``{"status": "ok" | "replaying", "fills_applied", "duplicate_fills",
  "unattributed_fills", "streams": {name: {"last_seq", "caught_up", "lost"}}, "snapshot":
  {"covered", "saved", "failures", "last_taken_ns"} | null}`` (liveness: always 200; ``lost``:
  messages aged out before a snapshot covered them, ADR-0122);
- ``GET /readyz`` → 200 once NATS is connected and the replay reached the end of every stream,
  else 503; ``GET /metrics`` → Prometheus (docs/metrics.md).

A Position is ``{"account_id", "symbol", "contract_id", "net_pos", "avg_price" (string or
null), "realized_pnl" (string, price points * contracts), "realized_pnl_money" (string or null:
points * the product's point value), "currency", "fill_count", "bought", "sold",
"last_fill_id", "updated_ns"}``.

Admin routes (``Authorization: Bearer <PHALANX_ADMIN_TOKEN>``, ADR-0120):

- ``GET /admin/pnl?by=day|strategy|account`` → ``{"by", "rows": [{"key", "currency",
  "realized_pnl_money", "fills", "unpriced_fills"}]}``;
- ``GET /admin/fills?account_id=&strategy_id=&since=&limit=&cursor=`` → ``{"fills": [...],
  "next_cursor"}`` (``since``: ISO 8601 date or time, UTC when no offset; pass ``next_cursor``
  back as ``cursor`` for the next page, ``null`` on the last);
- ``GET /admin/fills.csv`` and ``GET /admin/pnl.csv`` (same parameters; also the JSON routes
  with ``Accept: text/csv``): CSV with a header line, every matching fill unless ``limit``;
- ``GET /admin/positions/by-login/{login_id}``, ``GET /admin/positions/by-strategy[/{id}]``
  (:mod:`phalanx_ledger.admin_positions`, ADR-0124).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query
from fastapi.responses import Response

from phalanx_common.codec import encode
from phalanx_common.health import Readiness, add_readiness_route
from phalanx_common.http import admin_guard
from phalanx_common.metrics import CollectorRegistry, add_metrics_route
from phalanx_ledger.admin_positions import positions_router
from phalanx_ledger.follower import StreamFollower
from phalanx_ledger.pnl import FillRow, PnlBy, PnlRow, fill_rows, pnl_rows, to_csv
from phalanx_ledger.projection import PositionsProjection

__all__ = ["create_app"]

_Limit = Annotated[int | None, Query(ge=1, le=10_000)]


def _json(body: Any) -> Response:
    return Response(content=encode(body), media_type="application/json")


def create_app(
    projection: PositionsProjection,
    followers: Sequence[StreamFollower],
    registry: CollectorRegistry | None = None,
    readiness: Readiness | None = None,
    admin_token: str | None = None,
    snapshot_status: Callable[[], dict[str, Any]] | None = None,
    accounts_of_login: Callable[[str], list[int]] | None = None,
) -> FastAPI:
    """Assemble the ledger API over a projection and the followers that feed it.

    Args:
        projection: The positions projection (read only here).
        followers: The stream followers, for health.
        registry: Served at ``GET /metrics`` when given.
        readiness: Served at ``GET /readyz`` when given.
        admin_token: The admin credential; the ``/admin`` routes exist only when given.
        snapshot_status: Shown by ``/healthz`` under ``snapshot`` when given (ADR-0122).
        accounts_of_login: The accounts a broker login reaches, for
            ``/admin/positions/by-login`` (ADR-0124); that route exists only when given.
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
                    f.name: {"last_seq": f.last_seq, "caught_up": f.caught_up, "lost": f.lost}
                    for f in followers
                },
                "snapshot": snapshot_status() if snapshot_status is not None else None,
            }
        )

    if admin_token is not None:
        app.include_router(_admin_router(projection, admin_token))
        app.include_router(positions_router(projection, admin_token, accounts_of_login))
    if registry is not None:
        add_metrics_route(app, registry)
    if readiness is not None:
        add_readiness_route(app, readiness)
    return app


def _since_ns(since: str | None) -> int | None:
    if not since:
        return None
    try:
        moment = dt.datetime.fromisoformat(since)
    except ValueError as exc:
        raise HTTPException(422, f"since: not an ISO 8601 date or time: {since!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _wants_csv(accept: str | None) -> bool:
    return accept is not None and "text/csv" in accept.lower()


def _csv(text: str, name: str) -> Response:
    return Response(
        content=text,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _admin_router(projection: PositionsProjection, admin_token: str) -> APIRouter:
    router = APIRouter(
        prefix="/admin", tags=["admin"], dependencies=[Depends(admin_guard(admin_token))]
    )

    def fills(
        account_id: int | None,
        strategy_id: str | None,
        since: str | None,
        limit: int | None,
        cursor: str | None,
        as_csv: bool,
    ) -> Response:
        try:
            rows, next_cursor = fill_rows(
                projection,
                account_id=account_id,
                strategy_id=strategy_id,
                since_ns=_since_ns(since),
                cursor=cursor,
                limit=limit if limit is not None or as_csv else 100,
            )
        except ValueError as exc:
            raise HTTPException(422, f"cursor: not one this API returned: {cursor!r}") from exc
        if as_csv:
            return _csv(to_csv(rows, FillRow.__struct_fields__), "fills.csv")
        return _json({"fills": rows, "next_cursor": next_cursor})

    def pnl(by: PnlBy, as_csv: bool) -> Response:
        rows = pnl_rows(projection, by)
        if as_csv:
            return _csv(to_csv(rows, PnlRow.__struct_fields__), f"pnl-by-{by}.csv")
        return _json({"by": by, "rows": rows})

    @router.get("/fills")
    async def get_fills(
        account_id: int | None = None,
        strategy_id: str | None = None,
        since: str | None = None,
        limit: _Limit = None,
        cursor: str | None = None,
        accept: Annotated[str | None, Header()] = None,
    ) -> Response:
        """Fills with attribution and realized P&L, oldest first, 100 a page by default."""
        return fills(account_id, strategy_id, since, limit, cursor, _wants_csv(accept))

    @router.get("/fills.csv")
    async def get_fills_csv(
        account_id: int | None = None,
        strategy_id: str | None = None,
        since: str | None = None,
        limit: _Limit = None,
        cursor: str | None = None,
    ) -> Response:
        """The matching fills as CSV (all of them unless ``limit``)."""
        return fills(account_id, strategy_id, since, limit, cursor, True)

    @router.get("/pnl")
    async def get_pnl(
        by: PnlBy = "day", accept: Annotated[str | None, Header()] = None
    ) -> Response:
        """Realized P&L in money by UTC day, strategy or account, per currency."""
        return pnl(by, _wants_csv(accept))

    @router.get("/pnl.csv")
    async def get_pnl_csv(by: PnlBy = "day") -> Response:
        """Realized P&L as CSV."""
        return pnl(by, True)

    return router
