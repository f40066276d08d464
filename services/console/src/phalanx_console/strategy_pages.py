"""Strategies and subscriptions, through ingest's admin API.

- ``GET /strategies``: the list, and (admin) the form that creates one;
- ``POST /strategies``: create; the answer page shows the webhook URL and its secret this once,
  with a TradingView alert message template;
- ``GET /strategies/{id}``: settings, subscriptions, the live signal log;
- ``POST /strategies/{id}/settings``, ``/secret``, ``/subscriptions``, ``/test-signal``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from phalanx_console.backends import AdminApis, BackendError, Id
from phalanx_console.guards import admin_form, first, signed_in
from phalanx_console.render import Renderer

__all__ = ["TRADINGVIEW_TEMPLATE", "strategy_router"]

# TradingView fills the {{...}} placeholders when the alert fires (TradersPost's field names).
TRADINGVIEW_TEMPLATE = (
    '{\n  "ticker": "{{ticker}}",\n  "action": "{{strategy.order.action}}",\n'
    '  "quantity": "{{strategy.order.contracts}}",\n  "price": "{{close}}",\n'
    '  "time": "{{timenow}}"\n}'
)

_NUMBERS: dict[str, type[int] | type[float]] = {
    "max_quantity": int,
    "rate_limit_per_min": int,
    "max_signal_age_s": float,
    "repeat_window_s": float,
    "max_entry_age_s": float,
    "max_exit_age_s": float,
}
_FLAGS = ("tradingview_only", "require_signature")


class FormError(ValueError):
    """A form value the console cannot send."""


def _words(text: str) -> list[str]:
    return [w for w in text.replace(",", " ").split() if w]


def strategy_body(form: dict[str, list[str]]) -> dict[str, Any]:
    """The JSON body of a strategy create or patch from the settings form."""
    body: dict[str, Any] = {
        "name": first(form, "name"),
        "allowed_tickers": [t.upper() for t in _words(first(form, "allowed_tickers"))],
        "allowed_ips": _words(first(form, "allowed_ips")),
    }
    for flag in _FLAGS:
        body[flag] = first(form, flag) == "on"
    for name, kind in _NUMBERS.items():
        raw = first(form, name) or "0"
        try:
            body[name] = kind(raw)
        except ValueError:
            raise FormError(f"{name.replace('_', ' ')}: not a number") from None
    if not body["name"]:
        raise FormError("a strategy needs a name")
    return body


def changed_settings(body: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Only the settings the operator changed: the page shows the values in force, where a
    strategy's 0 may stand for the service default; sending those back unchanged would pin
    today's default into the strategy."""
    return {k: v for k, v in body.items() if current.get(k) != v}


def _optional_int(form: dict[str, list[str]], name: str) -> int | None:
    raw = first(form, name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise FormError(f"{name.replace('_', ' ')}: not a whole number") from None


def subscription_body(form: dict[str, list[str]], known: list[int]) -> dict[str, Any]:
    """The body of a bulk subscription: the ticked (or all) accounts, one sizing."""
    chosen: set[int] = set(known) if first(form, "all") == "on" else set()
    for raw in [*form.get("account", []), *_words(first(form, "account_ids"))]:
        try:
            chosen.add(int(raw))
        except ValueError:
            raise FormError(f"account {raw!r}: not an account id") from None
    if not chosen:
        raise FormError("choose at least one account")
    try:
        multiplier = Decimal(first(form, "multiplier") or "1")
    except InvalidOperation:
        raise FormError("multiplier: not a number") from None
    return {
        "account_ids": sorted(chosen),
        "multiplier": str(multiplier),
        "max_quantity": _optional_int(form, "max_quantity"),
        "fixed_quantity": _optional_int(form, "fixed_quantity"),
        "enabled": first(form, "enabled") == "on",
        "allow_add": first(form, "allow_add") == "on",
        "allow_reversal": first(form, "allow_reversal") == "on",
    }


def webhook_secret(url: str, strategy_id: str) -> str:
    """The secret of a pasted webhook URL of this strategy (empty if it is not one).

    Only the secret is taken: the test signal goes to ingest's own address, never to a URL
    someone typed.
    """
    parts = urlsplit(url.strip()).path.split("/")
    if len(parts) == 4 and parts[:3] == ["", "webhooks", strategy_id] and parts[3] != "{secret}":
        return parts[3]
    return ""


def strategy_router(apis: AdminApis, renderer: Renderer) -> APIRouter:
    """The strategy pages."""
    router = APIRouter()
    _listing_routes(router, apis, renderer)
    _strategy_routes(router, apis, renderer)
    _test_signal_routes(router, apis, renderer)
    return router


def _listing_routes(router: APIRouter, apis: AdminApis, renderer: Renderer) -> None:
    """``/strategies``: the list and creating a strategy."""

    @router.get("/strategies")
    async def list_strategies(request: Request) -> HTMLResponse:
        session = signed_in(request)
        listing = await apis.get("ingest", "/admin/strategies")
        return renderer.page(
            "strategies.html", session=session, strategies=listing["strategies"], error=""
        )

    @router.post("/strategies")
    async def create_strategy(request: Request) -> Response:
        session, form = await admin_form(request)
        try:
            created = await apis.call("ingest", "POST", "/admin/strategies", strategy_body(form))
        except (FormError, BackendError) as exc:
            listing = await apis.get("ingest", "/admin/strategies")
            return renderer.page(
                "strategies.html",
                status_code=422,
                session=session,
                strategies=listing["strategies"],
                error=_reason(exc),
            )
        return renderer.page(
            "strategy_secret.html",
            session=session,
            strategy_id=created["strategy_id"],
            name=created["name"],
            webhook_url=created["webhook_url"],
            alert_template=TRADINGVIEW_TEMPLATE,
            what="created",
        )


def _strategy_routes(router: APIRouter, apis: AdminApis, renderer: Renderer) -> None:
    """One strategy: its page, settings, secret rotation and subscriptions."""

    @router.get("/strategies/{strategy_id}")
    async def show_strategy(request: Request, strategy_id: Id) -> HTMLResponse:
        return await _strategy_page(
            apis, renderer, request, strategy_id, notice=request.query_params.get("ok", "")
        )

    @router.post("/strategies/{strategy_id}/settings")
    async def edit_strategy(request: Request, strategy_id: Id) -> Response:
        _, form = await admin_form(request)
        try:
            current = await apis.get("ingest", f"/admin/strategies/{strategy_id}")
            changes = changed_settings(strategy_body(form), current)
            await apis.call("ingest", "PATCH", f"/admin/strategies/{strategy_id}", changes)
        except (FormError, BackendError) as exc:
            return await _strategy_page(
                apis, renderer, request, strategy_id, error=_reason(exc), status=422
            )
        return RedirectResponse(f"/strategies/{strategy_id}?ok=settings+saved", 303)

    @router.post("/strategies/{strategy_id}/secret")
    async def rotate_secret(request: Request, strategy_id: Id) -> Response:
        session, form = await admin_form(request)
        if first(form, "confirm") != "on":
            return await _strategy_page(
                apis,
                renderer,
                request,
                strategy_id,
                error="tick the box to confirm the rotation",
                status=422,
            )
        rotated = await apis.call(
            "ingest", "POST", f"/admin/strategies/{strategy_id}/secret:rotate", {}
        )
        strategy = await apis.get("ingest", f"/admin/strategies/{strategy_id}")
        return renderer.page(
            "strategy_secret.html",
            session=session,
            strategy_id=strategy_id,
            name=strategy["name"],
            webhook_url=rotated["webhook_url"],
            alert_template=TRADINGVIEW_TEMPLATE,
            what="rotated",
            old_valid_until_ns=rotated["previous_secret_valid_until_ns"],
        )

    @router.post("/strategies/{strategy_id}/subscriptions")
    async def subscribe(request: Request, strategy_id: Id) -> Response:
        _, form = await admin_form(request)
        accounts = await apis.get("auth", "/admin/accounts")
        try:
            body = subscription_body(form, [a["account_id"] for a in accounts])
            done = await apis.call(
                "ingest", "POST", f"/admin/strategies/{strategy_id}/subscriptions:bulk", body
            )
        except (FormError, BackendError) as exc:
            return await _strategy_page(
                apis, renderer, request, strategy_id, error=_reason(exc), status=422
            )
        return RedirectResponse(
            f"/strategies/{strategy_id}?ok={done['subscribed']}+accounts+subscribed", 303
        )


def _test_signal_routes(router: APIRouter, apis: AdminApis, renderer: Renderer) -> None:
    """Sending a test signal through the strategy's own webhook URL."""

    @router.post("/strategies/{strategy_id}/test-signal")
    async def test_signal(request: Request, strategy_id: Id) -> Response:
        _, form = await admin_form(request)
        secret = webhook_secret(first(form, "webhook_url"), strategy_id)
        if not secret:
            return await _strategy_page(
                apis,
                renderer,
                request,
                strategy_id,
                error="paste this strategy's webhook URL (with its secret) to send a test signal",
                status=422,
            )
        signal = {
            "ticker": first(form, "ticker") or "MNQ1!",
            "action": first(form, "action") or "buy",
            "quantity": 1,
            "test": True,
        }
        async with httpx.AsyncClient(timeout=10) as http:
            try:
                resp = await http.post(
                    f"{apis.urls['ingest']}/webhooks/{strategy_id}/{secret}", json=signal
                )
            except httpx.HTTPError as exc:
                return await _strategy_page(
                    apis,
                    renderer,
                    request,
                    strategy_id,
                    error=f"webhook: {type(exc).__name__}",
                    status=502,
                )
        if resp.status_code >= 300:
            return await _strategy_page(
                apis,
                renderer,
                request,
                strategy_id,
                error=f"webhook answered {resp.status_code}: {resp.text[:200]}",
                status=422,
            )
        return RedirectResponse(f"/strategies/{strategy_id}?ok=test+signal+sent", 303)


async def _strategy_page(
    apis: AdminApis,
    renderer: Renderer,
    request: Request,
    strategy_id: str,
    error: str = "",
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    """A strategy's page: settings, subscriptions, the accounts to subscribe."""
    session = signed_in(request)
    strategy = await apis.get("ingest", f"/admin/strategies/{strategy_id}")
    subs = await apis.get("ingest", f"/admin/strategies/{strategy_id}/subscriptions")
    accounts = await apis.get("auth", "/admin/accounts")
    subscribed = {s["account_id"] for s in subs["subscriptions"]}
    return renderer.page(
        "strategy.html",
        status_code=status,
        session=session,
        strategy=strategy,
        subscriptions=subs["subscriptions"],
        accounts=accounts,
        subscribed=subscribed,
        alert_template=TRADINGVIEW_TEMPLATE,
        error=error,
        notice=notice,
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, BackendError):
        return f"{exc.service} refused: {exc.detail}"
    return str(exc)
