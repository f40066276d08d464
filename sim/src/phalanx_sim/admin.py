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
  "fills", "connections", "users", "accounts", "orders", "violations": []}``.
- ``POST /admin/oauth/clients`` ``{"client_id", "client_secret", "redirect_uris": [..]}`` → 201
  ``{"client_id"}`` (replaces a client of the same id); ``GET /admin/oauth/clients``.
- ``POST /admin/reset`` → ``{"ok": true}``: closes sockets, forgets everything, re-applies the seed.
- ``POST /admin/shutdown`` ``{"reasonCode", "reason", "userId"?}`` → ``{"told": n}``: sends a
  ``shutdown`` event and closes the sockets (of one user, or all).
"""

# ruff: noqa: N815

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.responses import Response

from phalanx_sim.state import OrderRecord
from phalanx_sim.times import iso_from_epoch

if TYPE_CHECKING:
    from phalanx_sim.runner import Simulator

__all__ = ["admin_router"]

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})
_encoder = msgspec.json.Encoder()


class CreateUserBody(msgspec.Struct, kw_only=True):
    """``POST /admin/users`` body."""

    name: str
    password: str
    accounts: int | list[str] = 1


class PriceBody(msgspec.Struct, kw_only=True):
    """``POST /admin/prices`` body."""

    symbol: str
    price: float


class OAuthClientBody(msgspec.Struct, kw_only=True):
    """``POST /admin/oauth/clients`` body."""

    client_id: str
    client_secret: str
    redirect_uris: list[str]


class ShutdownBody(msgspec.Struct, kw_only=True):
    """``POST /admin/shutdown`` body."""

    reasonCode: str = "Maintenance"
    reason: str = "Server is going to close this connection"
    userId: int | None = None


def _json(payload: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(payload), status_code=status, media_type="application/json")


async def _body(request: Request, type_: type[Any]) -> Any:
    try:
        return msgspec.json.decode(await request.body(), type=type_)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc


def _account_param(request: Request) -> int:
    value = request.query_params.get("accountId") or request.query_params.get("accountid")
    if value is None or not value.isdigit():
        raise HTTPException(status_code=400, detail="accountId query parameter is required")
    return int(value)


def _order_view(rec: OrderRecord) -> dict[str, Any]:
    view: dict[str, Any] = msgspec.to_builtins(rec.order)
    version = msgspec.to_builtins(rec.version)
    version.pop("id", None)
    version.pop("orderId", None)
    view.update(version)
    view["clOrdId"] = rec.new_command.command.clOrdId
    view["isAutomated"] = rec.new_command.command.isAutomated
    view["cumQty"] = rec.cum_qty
    if rec.avg_px is not None:
        view["avgPx"] = rec.avg_px
    view["symbol"] = rec.info.contract.name
    return view


def admin_router(sim: Simulator) -> APIRouter:
    """Routes of the admin API bound to a running :class:`~phalanx_sim.runner.Simulator`."""

    def loopback_only(request: Request) -> None:
        if not sim.settings.sim_admin_loopback_only:
            return
        host = request.client.host if request.client else ""
        if host not in _LOOPBACK:
            raise HTTPException(status_code=403, detail="admin API is loopback-only")

    router = APIRouter(prefix="/admin", dependencies=[Depends(loopback_only)])

    def route(method: str, path: str) -> Callable[[Any], Any]:
        return router.api_route(path, methods=[method], response_class=Response)

    @route("POST", "/users")
    async def create_user(request: Request) -> Response:
        body: CreateUserBody = await _body(request, CreateUserBody)
        try:
            created = sim.venue.create_user(body.name, body.password, body.accounts)
        except ValueError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        return _json(created)

    @route("GET", "/users")
    async def list_users() -> Response:
        state = sim.venue.state
        return _json(
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
        body: PriceBody = await _body(request, PriceBody)
        try:
            info, filled = sim.venue.set_price(body.symbol, body.price)
        except KeyError as exc:
            raise HTTPException(status_code=404, detail=f"unknown symbol {body.symbol}") from exc
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        return _json(
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
        return _json(named)

    @route("GET", "/orders")
    async def orders(request: Request) -> Response:
        book = sim.venue.state.books.get(_account_param(request))
        return _json([] if book is None else [_order_view(r) for r in book.orders.values()])

    @route("GET", "/fills")
    async def fills(request: Request) -> Response:
        book = sim.venue.state.books.get(_account_param(request))
        return _json([] if book is None else book.fills)

    @route("GET", "/positions")
    async def positions(request: Request) -> Response:
        book = sim.venue.state.books.get(_account_param(request))
        return _json([] if book is None else list(book.positions.values()))

    @route("GET", "/cashbalances")
    async def cash_balances(request: Request) -> Response:
        book = sim.venue.state.books.get(_account_param(request))
        return _json([] if book is None else [book.cash])

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
        return _json(
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

    @route("GET", "/stats")
    async def stats() -> Response:
        state = sim.venue.state
        return _json(
            {
                "requests": sum(state.by_endpoint.values()),
                "byEndpoint": dict(state.by_endpoint),
                "byUser": {str(k): v for k, v in state.by_user.items()},
                "placeOso": state.counters["placeoso"],
                "placeOrder": state.counters["placeorder"],
                "fills": state.counters["fills"],
                "connections": len(sim.hub.connections),
                "users": len(state.users),
                "accounts": len(state.accounts),
                "orders": len(state.orders),
                "violations": list(state.violations),
            }
        )

    @route("POST", "/reset")
    async def reset() -> Response:
        sim.reset()
        return _json({"ok": True})

    @route("POST", "/shutdown")
    async def shutdown(request: Request) -> Response:
        raw = await request.body()
        body = ShutdownBody() if not raw.strip() else await _body(request, ShutdownBody)
        told = sim.hub.shutdown(body.reasonCode, body.reason, body.userId)
        return _json({"told": told})

    @route("POST", "/oauth/clients")
    async def oauth_client(request: Request) -> Response:
        body: OAuthClientBody = await _body(request, OAuthClientBody)
        if not body.client_id or not body.redirect_uris:
            raise HTTPException(status_code=400, detail="client_id and redirect_uris required")
        sim.register_oauth_client(body.client_id, body.client_secret, body.redirect_uris)
        return _json({"client_id": body.client_id}, 201)

    @route("GET", "/oauth/clients")
    async def oauth_clients() -> Response:
        return _json(
            [
                {"client_id": c.client_id, "redirect_uris": list(c.redirect_uris)}
                for c in sim.venue.state.oauth_clients.values()
            ]
        )

    @route("GET", "/health")
    async def health() -> Response:
        return _json({"ok": True})

    return router
