"""Positions, P&L and drift from the ledger (ADR-0134).

- ``GET /positions`` (and ``/positions/table``, the part it refreshes every 2 s): the latest
  reconciliation of each account with the broker — drift (both sides of each contract),
  unknown (with the reason; never shown as ok), not checked yet, ok; every position with its
  net quantity, average, last traded price and unrealized P&L, flagged when its account's
  latest check is drift; and P&L per strategy and per account: realized, fees, net of fees,
  unrealized, total (strategies by name when ingest answers, else by id);
- ``GET /positions/strategies[?strategy=<id>]``: the fills each strategy's orders got, per
  account and contract (the ledger's ``/admin/positions/by-strategy``), one table per
  strategy, drift flagged per account and per strategy (ADR-0136);
- ``GET /positions/logins[?login=<id>]``: every login's accounts and positions (the ledger's
  ``/admin/positions/by-login/{id}`` for each login auth lists), drift flagged the same way;
- ``POST /positions/reconcile`` (admin, CSRF, the ``confirm`` box ticked): the ledger checks
  every active account (or the one given) with the broker now (``POST /admin/reconcile``,
  ``fetch_fills`` when ticked), then the page shows the outcome.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from phalanx_console.backends import AdminApis, BackendError
from phalanx_console.guards import admin_form, first, signed_in
from phalanx_console.ledger_views import account_checks, pnl_table, reconcile_summary
from phalanx_console.position_groups import login_groups, strategy_groups
from phalanx_console.render import Renderer
from phalanx_console.sessions import Session

__all__ = ["positions_router"]

_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")


def _open(positions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in positions if int(p.get("net_pos") or 0) != 0]


def positions_router(apis: AdminApis, renderer: Renderer, reconcile_timeout_s: float) -> APIRouter:
    """The positions page and its "reconcile now" button."""
    router = APIRouter()
    _overview_routes(router, apis, renderer, reconcile_timeout_s)
    _group_routes(router, apis, renderer)
    return router


def _overview_routes(
    router: APIRouter, apis: AdminApis, renderer: Renderer, reconcile_timeout_s: float
) -> None:
    """``/positions``, its table (polled) and the "reconcile now" button."""

    @router.get("/positions")
    async def show_positions(request: Request) -> HTMLResponse:
        return await _positions_page(apis, renderer, request, signed_in(request))

    @router.get("/positions/table")
    async def positions_table(request: Request) -> HTMLResponse:
        signed_in(request)
        return HTMLResponse(
            renderer.fragment("positions_table.html", **await _positions_values(apis)),
            headers={"Cache-Control": "no-store"},
        )

    @router.post("/positions/reconcile")
    async def reconcile(request: Request) -> Response:
        session, form = await admin_form(request)
        account = first(form, "account")
        if account and not account.isdigit():
            return await _positions_page(
                apis, renderer, request, session, "account: a numeric id", 422
            )
        if first(form, "confirm") != "on":
            return await _positions_page(
                apis, renderer, request, session, "tick the box to confirm", 422
            )
        try:
            answer = await apis.call(
                "ledger",
                "POST",
                "/admin/reconcile",
                timeout_s=reconcile_timeout_s,
                account_id=int(account) if account else None,
                fetch_fills="true" if first(form, "fetch_fills") == "on" else None,
            )
        except BackendError as exc:
            return await _positions_page(
                apis, renderer, request, session, f"ledger refused: {exc.detail}", 422
            )
        summary = reconcile_summary(answer["reconciliations"])
        return RedirectResponse(f"/positions?{urlencode({'ok': summary})}", 303)


def _group_routes(router: APIRouter, apis: AdminApis, renderer: Renderer) -> None:
    """Positions grouped by strategy and by login."""

    @router.get("/positions/strategies")
    async def positions_by_strategy(request: Request) -> HTMLResponse:
        session = signed_in(request)
        wanted = request.query_params.get("strategy", "")
        if wanted and (not _ID.match(wanted) or wanted in (".", "..")):
            return renderer.page("error.html", 404, session=session, message="no such strategy")
        path = "/admin/positions/by-strategy" + (f"/{quote(wanted, safe='')}" if wanted else "")
        body, drift, names = await asyncio.gather(
            apis.get("ledger", path), apis.get("ledger", "/admin/drift"), _strategy_names(apis)
        )
        rows = body["positions"]
        checks = account_checks(drift["reconciliations"], {int(p["account_id"]) for p in rows})
        return renderer.page(
            "positions_groups.html",
            session=session,
            kind="strategy",
            groups=strategy_groups(rows, checks, names),
            selected=wanted,
            error="",
            notice="",
        )

    @router.get("/positions/logins")
    async def positions_by_login(request: Request) -> HTMLResponse:
        session = signed_in(request)
        wanted = request.query_params.get("login", "")
        if wanted and (not _ID.match(wanted) or wanted in (".", "..")):
            return renderer.page("error.html", 404, session=session, message="no such login")
        logins = (
            [wanted] if wanted else [x["login_id"] for x in await apis.get("auth", "/admin/logins")]
        )
        answers, drift = await asyncio.gather(
            asyncio.gather(
                *(
                    apis.get("ledger", f"/admin/positions/by-login/{quote(login, safe='')}")
                    for login in logins
                )
            ),
            apis.get("ledger", "/admin/drift"),
        )
        accounts = {int(a) for answer in answers for a in answer.get("accounts") or ()}
        checks = account_checks(drift["reconciliations"], accounts)
        return renderer.page(
            "positions_groups.html",
            session=session,
            kind="login",
            groups=login_groups(answers, checks),
            selected=wanted,
            error="",
            notice="",
        )


async def _strategy_names(apis: AdminApis) -> dict[str, str]:
    # names are a courtesy: without ingest the page still shows the ledger's strategy ids
    try:
        listing = await apis.get("ingest", "/admin/strategies")
    except BackendError:
        return {}
    return {s["strategy_id"]: s["name"] for s in listing["strategies"]}


async def _positions_values(apis: AdminApis) -> dict[str, Any]:
    (
        positions_body,
        realized_strategy,
        realized_account,
        unrealized_strategy,
        unrealized_account,
        unrealized_positions,
        drift,
        names,
    ) = await asyncio.gather(
        apis.get("ledger", "/positions"),
        apis.get("ledger", "/admin/pnl", by="strategy"),
        apis.get("ledger", "/admin/pnl", by="account"),
        apis.get("ledger", "/admin/unrealized", by="strategy"),
        apis.get("ledger", "/admin/unrealized", by="account"),
        apis.get("ledger", "/admin/unrealized/positions"),
        apis.get("ledger", "/admin/drift"),
        _strategy_names(apis),
    )
    positions: list[dict[str, Any]] = positions_body["positions"]
    positions.sort(key=lambda p: (p["account_id"], p["symbol"]))
    marks = {(u["account_id"], u["symbol"]): u for u in unrealized_positions["positions"]}
    checks = account_checks(
        drift["reconciliations"], sorted({int(p["account_id"]) for p in _open(positions)})
    )
    return {
        "positions": positions,
        "open_positions": _open(positions),
        "marks": marks,
        "checks": checks,
        "check_of": {c.account_id: c for c in checks},
        "by_strategy": pnl_table(realized_strategy["rows"], unrealized_strategy["rows"]),
        "by_account": pnl_table(realized_account["rows"], unrealized_account["rows"]),
        "strategy_names": names,
    }


async def _positions_page(
    apis: AdminApis,
    renderer: Renderer,
    request: Request,
    session: Session,
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    return renderer.page(
        "positions.html",
        status_code=status,
        session=session,
        error=error,
        notice=request.query_params.get("ok", ""),
        **await _positions_values(apis),
    )
