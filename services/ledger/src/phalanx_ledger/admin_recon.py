"""Admin routes of reconciliation and unrealized P&L (``Authorization: Bearer <admin token>``).

- ``GET /admin/drift[?account_id=&status=ok|drift|unknown]`` → ``{"reconciliations":
  [Reconciliation]}``: the latest check of each account, both sides per contract;
- ``POST /admin/reconcile[?account_id=N&fetch_fills=true]`` → ``{"reconciliations": [...]}``:
  check now (every active account, or one), waiting for the outcome;
- ``GET /admin/unrealized?by=account|contract|strategy`` → ``{"by", "rows": [{"key",
  "currency", "unrealized_pnl_money", "positions", "unpriced_positions"}]}``;
- ``GET /admin/unrealized/positions[?account_id=]`` → ``{"positions": [UnrealizedRow]}``.

Each row says where its mark came from (``mark_source``: ``trade`` or ``mid`` of a quote,
else ``fill``) and how old it is (``mark_age_ms``); with a market-data socket configured,
both answers also carry ``"market_data": {"url", "connected", "connects", "subscribed",
"quoted", "refused"}`` (ADR-0128).

A Reconciliation is ``{"account_id", "login_id", "status", "checked_ns", "reason", "explained",
"fetched_fills", "contracts": [{"contract_id", "symbol", "ledger_net_pos", "broker_net_pos",
"fetched_net_pos", "ledger_avg_price", "broker_net_price"}]}`` (decimals as strings).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from phalanx_common.codec import encode
from phalanx_common.http import admin_guard
from phalanx_ledger.projection import PositionsProjection
from phalanx_ledger.quote_feed import QuoteFeed
from phalanx_ledger.reconcile import Status
from phalanx_ledger.reconciler import Reconciler
from phalanx_ledger.unrealized import UnrealizedBy, UnrealizedRow, totals, unrealized

__all__ = ["recon_router"]


def _json(body: Any) -> Response:
    return Response(content=encode(body), media_type="application/json")


def recon_router(
    projection: PositionsProjection,
    reconciler: Reconciler,
    admin_token: str,
    quotes: QuoteFeed | None = None,
    now_ns: Callable[[], int] = time.time_ns,
) -> APIRouter:
    """The ``/admin`` routes of drift and unrealized P&L (marked by ``quotes`` when given)."""

    def rows() -> list[UnrealizedRow]:
        return unrealized(projection, quotes.mark if quotes is not None else None, now_ns())

    def answer(body: dict[str, Any]) -> Response:
        if quotes is not None:
            body["market_data"] = quotes.status()
        return _json(body)

    router = APIRouter(
        prefix="/admin", tags=["admin"], dependencies=[Depends(admin_guard(admin_token))]
    )

    @router.get("/drift")
    async def get_drift(account_id: int | None = None, status: Status | None = None) -> Response:
        """The latest reconciliation of each account with the broker (both sides)."""
        rows = [
            outcome
            for key, outcome in sorted(reconciler.latest.items())
            if (account_id is None or key == account_id)
            and (status is None or outcome.status == status)
        ]
        return _json({"reconciliations": rows})

    @router.post("/reconcile")
    async def post_reconcile(account_id: int | None = None, fetch_fills: bool = False) -> Response:
        """Reconcile now (every active account, or one) and answer the outcomes."""
        wanted = None if account_id is None else [account_id]
        outcomes = await reconciler.reconcile(wanted, fetch_fills=fetch_fills)
        return _json({"reconciliations": outcomes})

    @router.get("/unrealized")
    async def get_unrealized(by: UnrealizedBy = "account") -> Response:
        """Unrealized P&L at quotes or the last traded price, by account, contract or strategy."""
        return answer({"by": by, "rows": totals(rows(), by)})

    @router.get("/unrealized/positions")
    async def get_unrealized_positions(account_id: int | None = None) -> Response:
        """Every open position with its mark and unrealized P&L."""
        found = [r for r in rows() if account_id is None or r.account_id == account_id]
        return answer({"positions": found})

    return router
