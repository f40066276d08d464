"""Trading state and the kill switch (the executor); positions are in ``positions_pages``.

- ``GET /trading``: the trading state of every scope, who set it and when;
- ``POST /trading/state``: set ``global``, ``strategy.<id>`` or ``account.<id>`` to ACTIVE,
  REDUCING or HALTED (the form's ``confirm`` box must be ticked);
- ``POST /trading/kill``: the kill switch: halt, cancel everything, flatten every account (the
  operator types ``FLATTEN`` to confirm).

Each change names the signed-in user as ``by`` in the executor's record (ADR-0132).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from phalanx_console.backends import AdminApis, BackendError
from phalanx_console.guards import admin_form, first, signed_in
from phalanx_console.render import Renderer
from phalanx_console.sessions import Session

__all__ = ["trading_router"]

_STATES = ("ACTIVE", "REDUCING", "HALTED")
KILL_WORD = "FLATTEN"


def trading_router(apis: AdminApis, renderer: Renderer) -> APIRouter:
    """The trading state and kill switch pages."""
    router = APIRouter()

    @router.get("/trading")
    async def show_trading(request: Request) -> HTMLResponse:
        return await _trading_page(apis, renderer, request, signed_in(request))

    @router.post("/trading/state")
    async def set_state(request: Request) -> Response:
        session, form = await admin_form(request)
        requested = _requested_state(form)
        if isinstance(requested, str):
            return await _trading_page(apis, renderer, request, session, requested, 422)
        scope, state = requested
        body = {"state": state, "reason": first(form, "reason"), "by": session.user}
        try:
            await apis.call("executor", "PUT", f"/admin/trading-state/{scope}", body)
        except BackendError as exc:
            return await _trading_page(
                apis, renderer, request, session, f"executor refused: {exc.detail}", 422
            )
        return RedirectResponse(f"/trading?ok={scope}+is+now+{state}", 303)

    @router.post("/trading/kill")
    async def kill(request: Request) -> Response:
        session, form = await admin_form(request)
        if first(form, "confirm_word") != KILL_WORD:
            return await _trading_page(
                apis,
                renderer,
                request,
                session,
                f"type {KILL_WORD} to confirm the kill switch",
                422,
            )
        reason = first(form, "reason") or "operator console"
        body = {"reason": reason, "by": session.user}
        try:
            await apis.call("executor", "POST", "/admin/kill-switch", body)
        except BackendError as exc:
            return await _trading_page(
                apis, renderer, request, session, f"executor refused: {exc.detail}", 422
            )
        return RedirectResponse("/trading?ok=kill+switch+engaged:+flattening+every+account", 303)

    return router


def _requested_state(form: dict[str, list[str]]) -> tuple[str, str] | str:
    """The scope and state the form asks for, or why it cannot be done."""
    scope = first(form, "scope") or "global"
    account = first(form, "account")
    if account:
        if not account.isdigit():
            return "account: a numeric id"
        scope = f"account.{account}"
    state = first(form, "state")
    if state not in _STATES:
        return "choose a state"
    if first(form, "confirm") != "on":
        return "tick the box to confirm"
    return scope, state


async def _trading_page(
    apis: AdminApis,
    renderer: Renderer,
    request: Request,
    session: Session,
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    """The trading states (global first) and the kill switch."""
    states = (await apis.get("executor", "/admin/trading-state"))["states"]
    states.sort(key=lambda s: (s["scope"] != "global", s["scope"]))
    strategies = (await apis.get("ingest", "/admin/strategies"))["strategies"]
    glob = next((s for s in states if s["scope"] == "global"), None)
    return renderer.page(
        "trading.html",
        status_code=status,
        session=session,
        states=states,
        global_state=glob["state"] if glob else "ACTIVE",
        strategies=strategies,
        choices=_STATES,
        kill_word=KILL_WORD,
        error=error,
        notice=request.query_params.get("ok", ""),
    )
