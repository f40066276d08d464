"""Admin and inspection API under ``/admin`` (no auth; loopback-only unless configured).

Shapes (JSON, camelCase like the venue):

- ``POST /admin/users`` ``{"name", "password", "accounts": <count> | [names]}`` →
  ``{"userId", "name", "accounts": [{"id", "name"}]}`` (409 if the name is taken).
- ``GET /admin/users`` → ``[{"userId", "name", "accounts": [{"id", "name"}]}]``.
- ``POST /admin/prices`` ``{"symbol", "price"}`` → ``{"symbol", "contractId", "price",
  "filledOrderIds"}``; moving the price fills crossed resting orders (404 unknown symbol,
  400 off-tick price).
- ``GET /admin/prices`` → ``{"<contract name>": price}``.
- ``GET /admin/orders?accountId=`` → orders with their current version, ``clOrdId`` (of the New
  command), ``cumQty``, ``avgPx``; ``GET /admin/fills?accountId=``,
  ``GET /admin/positions?accountId=``, ``GET /admin/cashbalances?accountId=`` → entities.
- ``GET /admin/requests?userId=&limit=`` → ``[{"time", "userId", "endpoint", "transport",
  "status"}]`` oldest first (REST and WebSocket, including failures).
- ``GET /admin/stats`` → ``{"requests", "byEndpoint", "byUser", "placeOso", "placeOrder",
  "fills", "faultDrops", "faultErrors", "connections", "users", "accounts", "orders",
  "finishedOrders", "ordersForgotten", "violations": []}`` (``faultDrops``/``faultErrors``:
  answers lost and 5xx given by faults; ``orders``: held now, ``finishedOrders`` of them
  finished, ``ordersForgotten``: finished orders dropped after the retention, ADR-0187).
- ``POST /admin/oauth/clients`` ``{"client_id", "client_secret", "redirect_uris": [..]}`` → 201
  ``{"client_id"}`` (replaces a client of the same id); ``GET /admin/oauth/clients``.
- ``GET /admin/limits[?userId=]`` → ``{"config", "logins": {id: {"lastMinute", "lastHour",
  "penaltyS", "lockoutS", "strikes", "violations"}}}``; ``PUT /admin/limits`` with any of
  ``enabled, perMinute, perHour, minuteS, hourS, countAuthorize, penaltyStrikes, lockoutS,
  renewPerHour, syncPerHour, meFailuresPerHour, loginFailuresPerHour, endpointScope``;
  ``POST /admin/limits/reset`` forgets windows, penalties, lockouts and violations.
- ``GET /admin/violations[?userId=]`` → ``{"count", "byLogin", "recent": [{"time", "login",
  "endpoint", "kind": "rate"|"penalty"|"warning"|"lockout"|"endpoint", "transport"}]}``.
- ``POST /admin/faults`` (see ``faults.py``) → the fault set; ``GET /admin/faults``;
  ``DELETE /admin/faults[?userId=]``. ``POST /admin/sockets/drop {"userId"?}`` →
  ``{"dropped": n}`` (closed without a ``c`` frame).
- ``POST /admin/market {"open": bool}`` (closed: orders fail ``SessionClosed``);
  ``POST /admin/risk {"accountId", "maxPosition"}`` (``MaxPosLimitReached``);
  ``POST /admin/partialfills {"accountId", "qty"}`` (fills of at most ``qty`` lots; 0: off);
  ``POST /admin/heldfills {"accountId", "held"}`` (late fills: marketable orders stay
  ``Working`` until the next price move).
- ``PUT /admin/fees {"product", "commission", "exchangeFee", "clearingFee", "nfaFee",
  "brokerageFee", "orderRoutingFee"}`` (USD per contract; absent: 0) → the product's rates;
  ``GET /admin/fees`` → ``{"<product>": rates}``. Each fill gets a ``FillFee`` (``fees.py``).
- ``POST /admin/trades {"accountId", "symbol", "action": "Buy"|"Sell", "qty"}`` → ``{"orderId",
  "fillIds", "netPos"}``: a manual trade, as the account's owner would place it in Tradovate's
  own app (a Market order with ``isAutomated: false`` and no ``clOrdId``, filled at the current
  price; its events go to the user's sockets like any order's). 404 unknown account or symbol.
- ``POST /admin/reset`` → ``{"ok": true}``: closes sockets, forgets everything, re-applies the seed.
- ``POST /admin/shutdown`` ``{"reasonCode", "reason", "userId"?}`` → ``{"told": n}``: sends a
  ``shutdown`` event and closes the sockets (of one user, or all).
- ``GET /admin/connects?since=<epoch s>&kind=open|authorize`` → ``{"count", "connects":
  [{"at": <epoch s>, "kind", "userId"}], "perSecond": {"<epoch s>": n}}``: when sockets were
  opened and authorized (successful ``authorize`` only), oldest first, to measure the connect
  rate of a reconnect storm.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.responses import Response

from phalanx_sim.admin_io import (
    LIMIT_FIELDS,
    CreateUserBody,
    DropBody,
    FeesBody,
    HeldFillsBody,
    LimitsBody,
    MarketBody,
    OAuthClientBody,
    PartialFillBody,
    PriceBody,
    RiskBody,
    ShutdownBody,
    TradeBody,
    account_param,
    check_faults,
    json_response,
    limits_view,
    order_view,
    read_body,
)
from phalanx_sim.faults import Faults
from phalanx_sim.fees import FeeRates
from phalanx_sim.host import SimHost
from phalanx_sim.matching import OrderSpec, Origin
from phalanx_sim.times import iso_from_epoch

__all__ = ["admin_router"]

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})


def admin_router(sim: SimHost) -> APIRouter:
    """Routes of the admin API bound to a running simulator (a :class:`SimHost`)."""

    def loopback_only(request: Request) -> None:
        if not sim.settings.sim_admin_loopback_only:
            return
        host = request.client.host if request.client else ""
        if host not in _LOOPBACK:
            raise HTTPException(status_code=403, detail="admin API is loopback-only")

    router = APIRouter(prefix="/admin", dependencies=[Depends(loopback_only)])

    def route(method: str, path: str) -> Callable[[Any], Any]:
        return router.api_route(path, methods=[method], response_class=Response)

    for add_routes in (
        _user_and_price_routes,
        _book_routes,
        _control_routes,
        _limit_routes,
        _fault_routes,
        _market_routes,
        _trade_routes,
    ):
        add_routes(route, sim)
    return router


Route = Callable[[str, str], Callable[[Any], Any]]
"""``route(method, path)``: the decorator that adds a handler to the admin router."""


def _user_and_price_routes(route: Route, sim: SimHost) -> None:
    """Users and prices: ``/users``, ``/prices``."""

    @route("POST", "/users")
    async def create_user(request: Request) -> Response:
        body: CreateUserBody = await read_body(request, CreateUserBody)
        try:
            created = sim.venue.create_user(body.name, body.password, body.accounts)
        except ValueError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        return json_response(created)

    @route("GET", "/users")
    async def list_users() -> Response:
        state = sim.venue.state
        return json_response(
            [
                {
                    "userId": rec.user.id,
                    "name": rec.user.name,
                    "accounts": [
                        {"id": a, "name": state.accounts[a].name} for a in rec.account_ids
                    ],
                }
                for rec in state.users.values()
            ]
        )

    @route("POST", "/prices")
    async def set_price(request: Request) -> Response:
        body: PriceBody = await read_body(request, PriceBody)
        try:
            info, filled = sim.venue.set_price(body.symbol, body.price)
        except KeyError as exc:
            raise HTTPException(status_code=404, detail=f"unknown symbol {body.symbol}") from exc
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        return json_response(
            {
                "symbol": info.contract.name,
                "contractId": info.contract.id,
                "price": body.price,
                "filledOrderIds": filled,
            }
        )

    @route("GET", "/prices")
    async def prices() -> Response:
        venue = sim.venue
        named: dict[str, float] = {}
        for contract_id, price in venue.engine.prices.items():
            info = venue.contracts.by_id(contract_id)
            if info is not None:
                named[info.contract.name] = price
        return json_response(named)


def _book_routes(route: Route, sim: SimHost) -> None:
    """An account's orders, fills, positions and cash; the request log."""

    @route("GET", "/orders")
    async def orders(request: Request) -> Response:
        book = sim.venue.state.books.get(account_param(request))
        return json_response([] if book is None else [order_view(r) for r in book.orders.values()])

    @route("GET", "/fills")
    async def fills(request: Request) -> Response:
        book = sim.venue.state.books.get(account_param(request))
        return json_response([] if book is None else list(book.fills.values()))

    @route("GET", "/positions")
    async def positions(request: Request) -> Response:
        book = sim.venue.state.books.get(account_param(request))
        return json_response([] if book is None else list(book.positions.values()))

    @route("GET", "/cashbalances")
    async def cash_balances(request: Request) -> Response:
        book = sim.venue.state.books.get(account_param(request))
        return json_response([] if book is None else [book.cash])

    @route("GET", "/requests")
    async def requests(request: Request) -> Response:
        params = request.query_params
        user = params.get("userId") or params.get("userid")
        user_id = int(user) if user is not None and user.isdigit() else None
        limit_text = params.get("limit", "")
        records = list(sim.venue.state.requests)
        if user_id is not None:
            records = [r for r in records if r.user_id == user_id]
        if limit_text.isdigit():
            records = records[-int(limit_text) :]
        return json_response(
            [
                {
                    "time": iso_from_epoch(r.time),
                    "userId": r.user_id,
                    "endpoint": r.endpoint,
                    "transport": r.transport,
                    "status": r.status,
                }
                for r in records
            ]
        )


def _control_routes(route: Route, sim: SimHost) -> None:
    """Statistics, reset, shutdown, connects and OAuth clients."""

    @route("GET", "/stats")
    async def stats() -> Response:
        state = sim.venue.state
        return json_response(
            {
                "requests": sum(state.by_endpoint.values()),
                "byEndpoint": dict(state.by_endpoint),
                "byUser": {str(k): v for k, v in state.by_user.items()},
                "placeOso": state.counters["placeoso"],
                "placeOrder": state.counters["placeorder"],
                "fills": state.counters["fills"],
                "faultDrops": state.counters["faultDrops"],
                "faultErrors": state.counters["faultErrors"],
                "connections": len(sim.hub.connections),
                "users": len(state.users),
                "accounts": len(state.accounts),
                "orders": len(state.orders),
                "finishedOrders": sim.venue.engine.finished.held,
                "ordersForgotten": sim.venue.engine.finished.forgotten,
                "violations": list(sim.venue.limiter.violations),
                "violationCount": sim.venue.limiter.violation_count,
                "violationsByLogin": {str(k): n for k, n in sim.venue.limiter.by_login.items()},
            }
        )

    @route("POST", "/reset")
    async def reset() -> Response:
        sim.reset()
        return json_response({"ok": True})

    @route("POST", "/shutdown")
    async def shutdown(request: Request) -> Response:
        raw = await request.body()
        body = ShutdownBody() if not raw.strip() else await read_body(request, ShutdownBody)
        told = sim.hub.shutdown(body.reasonCode, body.reason, body.userId)
        return json_response({"told": told})

    @route("GET", "/connects")
    async def connects(request: Request) -> Response:
        params = request.query_params
        try:
            since = float(params.get("since", "0"))
        except ValueError as exc:
            raise HTTPException(status_code=400, detail="since is epoch seconds") from exc
        kind = params.get("kind")
        records = [
            r for r in sim.hub.connects if r.at >= since and (kind is None or r.kind == kind)
        ]
        per_second: dict[str, int] = {}
        for r in records:
            second = str(int(r.at))
            per_second[second] = per_second.get(second, 0) + 1
        return json_response(
            {
                "count": len(records),
                "connects": [{"at": r.at, "kind": r.kind, "userId": r.user_id} for r in records],
                "perSecond": per_second,
            }
        )

    @route("POST", "/oauth/clients")
    async def oauth_client(request: Request) -> Response:
        body: OAuthClientBody = await read_body(request, OAuthClientBody)
        if not body.client_id or not body.redirect_uris:
            raise HTTPException(status_code=400, detail="client_id and redirect_uris required")
        sim.register_oauth_client(body.client_id, body.client_secret, body.redirect_uris)
        return json_response({"client_id": body.client_id}, 201)

    @route("GET", "/oauth/clients")
    async def oauth_clients() -> Response:
        return json_response(
            [
                {"client_id": c.client_id, "redirect_uris": list(c.redirect_uris)}
                for c in sim.venue.state.oauth_clients.values()
            ]
        )


def _limit_routes(route: Route, sim: SimHost) -> None:
    """Rate limits and violations."""

    # -------------------------------------------------------------- limits and violations

    @route("GET", "/limits")
    async def limits(request: Request) -> Response:
        limiter = sim.venue.limiter
        now = sim.venue.clock.time()
        user = request.query_params.get("userId")
        logins = {
            str(key): state.view(now)
            for key, state in limiter.logins.items()
            if user is None or str(key) == user
        }
        return json_response({"config": limits_view(limiter.config), "logins": logins})

    @route("PUT", "/limits")
    async def set_limits(request: Request) -> Response:
        body: LimitsBody = await read_body(request, LimitsBody)
        changes = {
            attr: getattr(body, name)
            for name, attr in LIMIT_FIELDS.items()
            if getattr(body, name) is not None
        }
        if changes.get("endpoint_scope", "login") not in ("login", "ip"):
            raise HTTPException(status_code=400, detail="endpointScope is 'login' or 'ip'")
        limiter = sim.venue.limiter
        limiter.configure(dataclasses.replace(limiter.config, **changes))
        return json_response({"config": limits_view(limiter.config)})

    @route("POST", "/limits/reset")
    async def reset_limits() -> Response:
        sim.venue.limiter.reset()
        return json_response({"ok": True})

    @route("GET", "/violations")
    async def violations(request: Request) -> Response:
        limiter = sim.venue.limiter
        user = request.query_params.get("userId")
        records = [
            {**v, "time": iso_from_epoch(v["time"])}
            for v in limiter.violations
            if user is None or str(v["login"]) == user
        ]
        return json_response(
            {
                "count": limiter.violation_count,
                "byLogin": {str(k): n for k, n in limiter.by_login.items()},
                "recent": records,
            }
        )


def _fault_routes(route: Route, sim: SimHost) -> None:
    """Faults and dropped sockets."""

    # -------------------------------------------------------------- faults

    @route("POST", "/faults")
    async def set_faults(request: Request) -> Response:
        faults: Faults = await read_body(request, Faults)
        check_faults(faults)
        if faults.seed is not None:
            sim.venue.fault_draws.seed(faults.seed)
        if faults.idle:
            sim.venue.faults.pop(faults.userId, None)
        else:
            sim.venue.faults[faults.userId] = faults
        return json_response(faults)

    @route("GET", "/faults")
    async def get_faults() -> Response:
        return json_response(list(sim.venue.faults.values()))

    @route("DELETE", "/faults")
    async def clear_faults(request: Request) -> Response:
        user = request.query_params.get("userId")
        if user is None:
            sim.venue.faults.clear()
        elif user.isdigit():
            sim.venue.faults.pop(int(user), None)
        return json_response({"ok": True})

    @route("POST", "/sockets/drop")
    async def drop_sockets(request: Request) -> Response:
        raw = await request.body()
        body = DropBody() if not raw.strip() else await read_body(request, DropBody)
        return json_response({"dropped": sim.hub.drop(body.userId)})


def _market_routes(route: Route, sim: SimHost) -> None:
    """Market hours, risk limits, partial and held fills."""

    # -------------------------------------------------------------- market and risk

    @route("POST", "/market")
    async def market(request: Request) -> Response:
        body: MarketBody = await read_body(request, MarketBody)
        sim.venue.market_open = body.open
        return json_response({"open": sim.venue.market_open})

    @route("POST", "/risk")
    async def risk(request: Request) -> Response:
        body: RiskBody = await read_body(request, RiskBody)
        _known_account(sim, body.accountId)
        if body.maxPosition is None:
            sim.venue.max_position.pop(body.accountId, None)
        else:
            sim.venue.max_position[body.accountId] = body.maxPosition
        return json_response({"accountId": body.accountId, "maxPosition": body.maxPosition})

    @route("POST", "/partialfills")
    async def partial_fills(request: Request) -> Response:
        body: PartialFillBody = await read_body(request, PartialFillBody)
        _known_account(sim, body.accountId)
        engine = sim.venue.engine
        if body.qty > 0:
            engine.partial_fill_qty[body.accountId] = body.qty
        else:
            engine.partial_fill_qty.pop(body.accountId, None)
        return json_response({"accountId": body.accountId, "qty": body.qty})

    @route("POST", "/heldfills")
    async def held_fills(request: Request) -> Response:
        body: HeldFillsBody = await read_body(request, HeldFillsBody)
        _known_account(sim, body.accountId)
        held = sim.venue.engine.held_fills
        if body.held:
            held.add(body.accountId)
        else:
            held.discard(body.accountId)
        return json_response({"accountId": body.accountId, "held": body.held})


def _trade_routes(route: Route, sim: SimHost) -> None:
    """Fees, manual trades and health."""

    @route("PUT", "/fees")
    async def set_fees(request: Request) -> Response:
        body: FeesBody = await read_body(request, FeesBody)
        product = body.product.upper()
        if sim.venue.contracts.product(product) is None:
            raise HTTPException(status_code=404, detail=f"unknown product {body.product}")
        rates = FeeRates(**{f: getattr(body, f) for f in FeeRates.__struct_fields__})
        sim.venue.engine.fee_rates[product] = rates
        return json_response({"product": product, **msgspec.to_builtins(rates)})

    @route("GET", "/fees")
    async def get_fees() -> Response:
        return json_response(dict(sim.venue.engine.fee_rates.items()))

    @route("POST", "/trades")
    async def manual_trade(request: Request) -> Response:
        body: TradeBody = await read_body(request, TradeBody)
        venue = sim.venue
        book = venue.state.books.get(body.accountId)
        if book is None:
            raise HTTPException(status_code=404, detail="unknown account")
        info = venue.contracts.resolve(body.symbol)
        if info is None:
            raise HTTPException(status_code=404, detail=f"unknown symbol {body.symbol}")
        if body.action not in ("Buy", "Sell") or body.qty <= 0:
            raise HTTPException(status_code=400, detail="action is Buy or Sell, qty positive")
        origin = Origin(user_id=book.account.userId, session_id=0, is_automated=False)
        spec = OrderSpec(action=body.action, order_type="Market", qty=body.qty)
        entry, _ = venue.engine.place(book, info, spec, origin)
        position = book.positions.get(info.contract.id)
        return json_response(
            {
                "orderId": entry.order.id,
                "fillIds": [fill.id for fill in entry.fills],
                "netPos": 0 if position is None else position.netPos,
            }
        )

    @route("GET", "/health")
    async def health() -> Response:
        return json_response({"ok": True})


def _known_account(sim: SimHost, account_id: int) -> None:
    """404 unless ``account_id`` is an account of the simulator."""
    if account_id not in sim.venue.state.accounts:
        raise HTTPException(status_code=404, detail="unknown account")
