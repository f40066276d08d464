"""Admin routes: positions by broker login and by strategy (ADR-0124; decimals as strings).

- ``GET /admin/positions/by-login/{login_id}`` → ``{"login_id", "accounts": [account ids],
  "positions": [Position]}``: the positions of every account the login reaches (from the
  ``accounts`` bucket the auth service writes; an unknown login has no accounts);
- ``GET /admin/positions/by-strategy`` → ``{"positions": [StrategyPosition]}`` for every
  strategy (``outside`` included), ``GET /admin/positions/by-strategy/{strategy_id}`` for one:
  ``{"strategy_id", "account_id", "symbol", "contract_id", "net_pos", "bought", "sold",
  "fill_count", "realized_pnl", "realized_pnl_money", "currency"}`` summed over the fills
  attributed to the strategy — not a position the venue holds (it nets all strategies).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from phalanx_common.codec import encode
from phalanx_common.http import admin_guard
from phalanx_ledger.position_views import login_positions, strategy_positions
from phalanx_ledger.projection import PositionsProjection

__all__ = ["positions_router"]


def _json(body: Any) -> Response:
    return Response(content=encode(body), media_type="application/json")


def positions_router(
    projection: PositionsProjection,
    admin_token: str,
    accounts_of_login: Callable[[str], list[int]] | None,
) -> APIRouter:
    """The routes; the by-login one only when ``accounts_of_login`` (the mapping) is given."""
    router = APIRouter(
        prefix="/admin/positions",
        tags=["admin"],
        dependencies=[Depends(admin_guard(admin_token))],
    )

    if accounts_of_login is not None:
        of_login = accounts_of_login

        @router.get("/by-login/{login_id}")
        async def by_login(login_id: str) -> Response:
            """Positions of every account a broker login reaches."""
            accounts = of_login(login_id)
            return _json(
                {
                    "login_id": login_id,
                    "accounts": accounts,
                    "positions": login_positions(projection, accounts),
                }
            )

    @router.get("/by-strategy")
    async def by_strategy() -> Response:
        """Per strategy, account and contract: what the strategy's fills bought, sold, realized."""
        return _json({"positions": strategy_positions(projection)})

    @router.get("/by-strategy/{strategy_id}")
    async def of_strategy(strategy_id: str) -> Response:
        """One strategy's fills per account and contract."""
        return _json({"positions": strategy_positions(projection, strategy_id)})

    return router
