"""Contract tests: the client against a venue that speaks Tradovate's protocol.

The venue is the simulator (:mod:`phalanx_sim`, in-process, always run) and, when credentials are
set, Tradovate demo (skipped otherwise):

    PHALANX_TRADOVATE_DEMO_USER=... PHALANX_TRADOVATE_DEMO_PASSWORD=... \
    PHALANX_TRADOVATE_DEMO_CID=... PHALANX_TRADOVATE_DEMO_SEC=... \
    [PHALANX_TRADOVATE_DEMO_APP_ID=...] [PHALANX_TRADOVATE_DEMO_SYMBOL=MNQZ6] \
    .venv/bin/python -m pytest libs/tradovate/tests/test_contract.py -k demo

On demo only the tests that place no order that could fill run (login, accounts, sync, deps
isolation, off-tick rejection); tests that move prices need the simulator's admin API.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio

from phalanx_testing.waiting import eventually
from phalanx_tradovate import wire
from phalanx_tradovate.errors import AuthError, OrderRejected
from phalanx_tradovate.frames import PropsEvent
from phalanx_tradovate.rest import TradovateRest
from phalanx_tradovate.ws import TradovateSocket

SIM_SYMBOL = "MNQZ6"
SIM_PRICE = Decimal("21000.00")
DEMO_ENV = "PHALANX_TRADOVATE_DEMO_USER"


@dataclass
class Venue:
    """A venue under test and a login on it."""

    name: str
    rest_url: str
    ws_url: str
    username: str
    password: str
    user_id: int
    account_ids: list[int]
    symbol: str
    app_id: str | None = None
    cid: int | str | None = None
    sec: str | None = None
    sim: Any = None  # a phalanx_sim.Simulator when the venue is the simulator
    other_account_id: int | None = None  # an account of another user (sim only)
    rest: TradovateRest = field(init=False)

    def __post_init__(self) -> None:
        self.rest = TradovateRest(self.rest_url)

    def login(self, password: str | None = None) -> wire.AccessTokenRequest:
        return wire.AccessTokenRequest(
            name=self.username,
            password=self.password if password is None else password,
            appId=self.app_id or "phalanx-contract-tests",
            appVersion="0.1.0",
            deviceId="phalanx-contract-tests-0001",
            cid=self.cid,
            sec=self.sec,
        )

    def set_price(self, price: Decimal) -> None:
        if self.sim is None:
            pytest.skip("needs the simulator's admin API")
        self.sim.set_price(self.symbol, float(price))


async def _sim_venue() -> AsyncIterator[Venue]:
    try:
        from phalanx_sim import Simulator
    except ImportError:  # pragma: no cover - the simulator is part of the workspace
        pytest.skip("phalanx_sim is not installed")
    sim = Simulator(host="127.0.0.1", port=0)
    await sim.start()
    try:
        user = sim.create_user("contract_user", "contract-pw", accounts=2)
        other = sim.create_user("someone_else", "other-pw", accounts=1)
        venue = Venue(
            name="sim",
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            username=user.name,
            password="contract-pw",
            user_id=user.userId,
            account_ids=[int(a["id"]) for a in user.accounts],
            symbol=SIM_SYMBOL,
            sim=sim,
            other_account_id=int(other.accounts[0]["id"]),
        )
        sim.set_price(SIM_SYMBOL, float(SIM_PRICE))
        yield venue
        await venue.rest.aclose()
    finally:
        await sim.stop()


async def _demo_venue() -> AsyncIterator[Venue]:
    if not os.environ.get(DEMO_ENV):
        pytest.skip(f"{DEMO_ENV} not set: Tradovate demo contract tests skipped")
    env = os.environ
    venue = Venue(
        name="demo",
        rest_url=env.get("PHALANX_TRADOVATE_DEMO_REST_URL", "https://demo.tradovateapi.com/v1"),
        ws_url=env.get("PHALANX_TRADOVATE_DEMO_WS_URL", "wss://demo.tradovateapi.com/v1/websocket"),
        username=env[DEMO_ENV],
        password=env.get("PHALANX_TRADOVATE_DEMO_PASSWORD", ""),
        user_id=0,
        account_ids=[],
        symbol=env.get("PHALANX_TRADOVATE_DEMO_SYMBOL", SIM_SYMBOL),
        app_id=env.get("PHALANX_TRADOVATE_DEMO_APP_ID"),
        cid=env.get("PHALANX_TRADOVATE_DEMO_CID"),
        sec=env.get("PHALANX_TRADOVATE_DEMO_SEC"),
    )
    token = await venue.rest.access_token_request(venue.login())
    assert token.accessToken
    assert token.userId
    venue.user_id = token.userId
    venue.account_ids = [a.id for a in await venue.rest.account_list(token.accessToken)]
    yield venue
    await venue.rest.aclose()


@pytest_asyncio.fixture(params=["sim", "demo"])
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[Venue]:
    source = _sim_venue() if request.param == "sim" else _demo_venue()
    async for v in source:
        yield v


@pytest_asyncio.fixture
async def token(venue: Venue) -> str:
    resp = await venue.rest.access_token_request(venue.login())
    assert resp.accessToken
    return resp.accessToken


async def _spec(venue: Venue, token: str, account_id: int) -> str:
    accounts = {a.id: a.name for a in await venue.rest.account_list(token)}
    return accounts[account_id]


@pytest.mark.integration
async def test_login_returns_a_token_for_the_user(venue: Venue) -> None:
    resp = await venue.rest.access_token_request(venue.login())
    assert resp.accessToken
    assert resp.userId == venue.user_id
    assert resp.expirationTime is not None
    assert resp.expirationTime.endswith("Z")
    assert resp.errorText is None


@pytest.mark.integration
async def test_wrong_password_is_an_auth_error(venue: Venue) -> None:
    if venue.sim is None:
        pytest.skip("wrong passwords on demo count toward the captcha penalty")
    with pytest.raises(AuthError):
        await venue.rest.access_token_request(venue.login(password="wrong"))


@pytest.mark.integration
async def test_account_list_and_renewal(venue: Venue, token: str) -> None:
    accounts = await venue.rest.account_list(token)
    assert sorted(a.id for a in accounts) == sorted(venue.account_ids)
    assert all(a.name for a in accounts)
    renewed = await venue.rest.renew_access_token(token)
    assert renewed.accessToken
    assert renewed.accessToken != token
    me = await venue.rest.me(renewed.accessToken)
    assert me.userId == venue.user_id


@pytest.mark.integration
async def test_unknown_token_is_an_auth_error(venue: Venue) -> None:
    with pytest.raises(AuthError):
        await venue.rest.account_list("not-a-token")


@pytest.mark.integration
async def test_place_oso_over_rest_and_find_it_by_account(venue: Venue, token: str) -> None:
    venue.set_price(SIM_PRICE)
    account_id = venue.account_ids[0]
    spec = await _spec(venue, token, account_id)
    order = _order(venue, account_id, "rest-oso-1", spec)
    result = await venue.rest.place_oso(token, order)
    assert result.orderId is not None
    assert result.oso1Id is not None
    assert result.oso2Id is not None
    orders = await venue.rest.order_deps(token, account_id)
    assert result.orderId in {o.id for o in orders}
    assert {o.accountId for o in orders} == {account_id}
    commands = await venue.rest.command_deps(token, result.orderId)
    assert "rest-oso-1" in {c.clOrdId for c in commands}


@pytest.mark.integration
async def test_deps_never_return_another_accounts_orders(venue: Venue, token: str) -> None:
    venue.set_price(SIM_PRICE)
    first, second = venue.account_ids[:2]
    spec = await _spec(venue, token, first)
    placed = await venue.rest.place_oso(token, _order(venue, first, "iso-1", spec))
    assert placed.orderId is not None
    others = await venue.rest.order_deps(token, second)
    assert placed.orderId not in {o.id for o in others}
    assert all(o.accountId == second for o in others)
    positions = await venue.rest.position_deps(token, second)
    assert all(p.accountId == second for p in positions)


@pytest.mark.integration
async def test_order_on_another_users_account_is_refused(venue: Venue, token: str) -> None:
    if venue.other_account_id is None:
        pytest.skip("needs a second user (simulator)")
    with pytest.raises((OrderRejected, AuthError)):
        await venue.rest.place_oso(
            token,
            _order(venue, venue.other_account_id, "foreign", "X"),
        )


@pytest.mark.integration
async def test_off_tick_price_is_rejected(venue: Venue, token: str) -> None:
    account_id = venue.account_ids[0]
    spec = await _spec(venue, token, account_id)
    # a buy limit far below the market and off the 0.25 tick: rejected, never resting
    order = _order(venue, account_id, "off-tick", spec, "Limit", SIM_PRICE - Decimal("500.1"))
    with pytest.raises(OrderRejected) as info:
        await venue.rest.place_oso(token, order)
    assert info.value.failure_reason == "InvalidPrice"
    assert info.value.retry_safe is True


@pytest.mark.integration
async def test_ws_sync_place_oso_and_fill_events(venue: Venue, token: str) -> None:
    venue.set_price(SIM_PRICE)
    events: list[PropsEvent] = []
    sock = TradovateSocket(venue.ws_url, token, on_props=events.append)
    await sock.connect()
    try:
        snapshot = await sock.sync(venue.user_id)
        assert set(venue.account_ids) <= {a.id for a in snapshot.accounts}
        account_id = venue.account_ids[1]
        spec = await _spec(venue, token, account_id)
        result = await sock.place_oso(_order(venue, account_id, "ws-oso-1", spec))
        assert result.orderId is not None
        assert result.oso1Id is not None

        def fill_of_entry() -> list[wire.Fill]:
            fills = [e.decode_entity() for e in events if e.entity_type == "fill"]
            return [f for f in fills if isinstance(f, wire.Fill) and f.orderId == result.orderId]

        (fill,) = await eventually(fill_of_entry, what="fill of the entry order")
        assert fill.qty == 1
        assert fill.action == "Buy"
        assert fill.price == SIM_PRICE

        def position() -> list[wire.Position]:
            found = [e.decode_entity() for e in events if e.entity_type == "position"]
            return [
                p
                for p in found
                if isinstance(p, wire.Position) and p.accountId == account_id and p.netPos == 1
            ]

        await eventually(position, what="position of 1 after the fill")
        orders = await sock.order_deps(account_id)
        assert {result.orderId, result.oso1Id, result.oso2Id} <= {o.id for o in orders}
        commands = await sock.command_deps(result.orderId)
        assert "ws-oso-1" in {c.clOrdId for c in commands}
    finally:
        await sock.close()


@pytest.mark.integration
async def test_ws_bad_token_is_an_auth_error(venue: Venue) -> None:
    sock = TradovateSocket(venue.ws_url, "not-a-token")
    with pytest.raises(AuthError):
        await sock.connect()
    assert not sock.connected


@pytest.mark.integration
async def test_ws_requests_are_correlated_under_concurrency(venue: Venue, token: str) -> None:
    sock = TradovateSocket(venue.ws_url, token)
    await sock.connect()
    try:
        results = await asyncio.gather(*(sock.order_deps(a) for a in venue.account_ids * 5))
        for account_id, orders in zip(venue.account_ids * 5, results, strict=True):
            assert all(o.accountId == account_id for o in orders)
    finally:
        await sock.close()


def _order(
    venue: Venue,
    account_id: int,
    clordid: str,
    spec: str,
    order_type: wire.OrderType = "Market",
    price: Decimal | None = None,
) -> wire.PlaceOso:
    """A 1-lot buy with a take-profit 50 points up and a stop 50 points down."""
    return wire.PlaceOso(
        accountSpec=spec,
        accountId=account_id,
        action="Buy",
        symbol=venue.symbol,
        orderQty=1,
        orderType=order_type,
        price=price,
        clOrdId=clordid,
        bracket1=wire.RestrainedOrderVersion(
            action="Sell", orderType="Limit", price=SIM_PRICE + 50
        ),
        bracket2=wire.RestrainedOrderVersion(
            action="Sell", orderType="Stop", stopPrice=SIM_PRICE - 50
        ),
    )
