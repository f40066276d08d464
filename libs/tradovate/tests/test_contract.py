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

import httpx
import msgspec
import pytest
import pytest_asyncio

from phalanx_testing.waiting import eventually
from phalanx_tradovate import wire
from phalanx_tradovate.errors import (
    AuthError,
    LockoutError,
    OrderRejected,
    PenaltyError,
    RequestTimeout,
    VenueError,
)
from phalanx_tradovate.frames import PropsEvent
from phalanx_tradovate.reconnecting import ReconnectingSocket
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

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the simulator's admin API over HTTP (skips the test on demo)."""
        if self.sim is None:
            pytest.skip("needs the simulator's admin API")
        async with httpx.AsyncClient(base_url=self.sim.url) as http:
            answer = await http.request(method, "/admin" + path, json=body)
            assert answer.status_code < 300, answer.text
            return answer.json()


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
async def test_trailing_stop_and_stop_limit_legs_keep_their_peg_limit_and_time_in_force(
    venue: Venue, token: str
) -> None:
    venue.set_price(SIM_PRICE)
    account_id = venue.account_ids[0]
    spec = await _spec(venue, token, account_id)
    # a buy limit far below the market (never fills), its legs suspended until it would
    entry = _order(venue, account_id, "legs-1", spec, "Limit", SIM_PRICE - 500)
    order = msgspec.structs.replace(
        entry,
        timeInForce="GTC",
        bracket1=wire.RestrainedOrderVersion(
            action="Sell",
            orderType="StopLimit",
            stopPrice=SIM_PRICE - 550,
            price=SIM_PRICE - Decimal("552.25"),
            timeInForce="GTC",
        ),
        bracket2=wire.RestrainedOrderVersion(
            action="Sell",
            orderType="TrailingStop",
            stopPrice=SIM_PRICE - 520,
            pegDifference=Decimal(20),
            timeInForce="GTC",
        ),
    )
    placed = await venue.rest.place_oso(token, order)
    assert placed.orderId is not None
    assert placed.oso1Id is not None
    assert placed.oso2Id is not None
    try:
        [stop_limit] = await venue.rest.order_version_deps(token, placed.oso1Id)
        [trailing] = await venue.rest.order_version_deps(token, placed.oso2Id)
        [head] = await venue.rest.order_version_deps(token, placed.orderId)
        assert (stop_limit.orderType, stop_limit.stopPrice, stop_limit.price) == (
            "StopLimit",
            SIM_PRICE - 550,
            SIM_PRICE - Decimal("552.25"),
        )
        assert (trailing.orderType, trailing.stopPrice, trailing.pegDifference) == (
            "TrailingStop",
            SIM_PRICE - 520,
            Decimal(20),
        )
        assert [v.timeInForce for v in (head, stop_limit, trailing)] == ["GTC"] * 3
    finally:
        await venue.rest.cancel_order(token, wire.CancelOrder(orderId=placed.orderId))


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


# -- failure shapes (simulator faults; demo cannot be made to fail on demand) -----------------


@pytest.mark.integration
async def test_p_ticket_is_honoured_and_the_request_resent_with_the_ticket(
    venue: Venue, token: str
) -> None:
    account_id = venue.account_ids[0]
    order = _order(venue, account_id, "ticket-1", await _spec(venue, token, account_id))
    await venue.admin("POST", "/faults", {"penaltyCount": 1, "penaltyTimeS": 0})

    with pytest.raises(PenaltyError) as info:
        await venue.rest.place_oso(token, order)
    assert info.value.retry_safe is True
    assert info.value.captcha is False
    result = await venue.rest.place_oso(token, order, p_ticket=info.value.ticket)

    assert result.orderId is not None
    found = await venue.rest.find_by_cl_ord_id(token, account_id, "ticket-1")
    assert found is not None
    assert found[0].id == result.orderId


@pytest.mark.integration
async def test_login_penalty_is_waited_out_and_resent_with_the_ticket(venue: Venue) -> None:
    await venue.admin("POST", "/faults", {"penaltyCount": 1, "penaltyTimeS": 0})
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    rest = TradovateRest(venue.rest_url, sleep=fake_sleep)
    try:
        resp = await rest.access_token_request(venue.login())
    finally:
        await rest.aclose()

    assert resp.accessToken
    assert waits == [0]


@pytest.mark.integration
async def test_failed_logins_end_in_a_captcha_penalty(venue: Venue) -> None:
    await venue.admin("PUT", "/limits", {"loginFailuresPerHour": 1})
    with pytest.raises(AuthError):
        await venue.rest.access_token_request(venue.login(password="wrong"))

    with pytest.raises(PenaltyError) as info:
        await venue.rest.access_token_request(venue.login())

    assert info.value.captcha is True
    assert info.value.retry_safe is False


@pytest.mark.integration
async def test_a_429_stops_that_logins_traffic_on_the_socket(venue: Venue, token: str) -> None:
    await venue.admin("PUT", "/limits", {"perMinute": 2, "penaltyStrikes": 0})
    sock = TradovateSocket(venue.ws_url, token)
    await sock.connect()
    try:
        outcomes: list[str] = []
        for _ in range(5):
            try:
                await sock.order_deps(venue.account_ids[0])
                outcomes.append("ok")
            except PenaltyError:
                outcomes.append("penalty")
            except LockoutError as exc:
                outcomes.append(str(exc.status))
                if exc.status == 429:
                    break
        assert outcomes == ["ok", "ok", "penalty", "423", "429"]
        seen = len(await venue.admin("GET", f"/requests?userId={venue.user_id}"))

        with pytest.raises(LockoutError) as info:
            await sock.order_deps(venue.account_ids[0])

        assert "not sent" in str(info.value)
        assert len(await venue.admin("GET", f"/requests?userId={venue.user_id}")) == seen
    finally:
        await sock.close()


@pytest.mark.integration
async def test_dropped_response_is_resolved_by_clordid_lookup_never_by_resending(
    venue: Venue, token: str
) -> None:
    venue.set_price(SIM_PRICE)
    account_id = venue.account_ids[1]
    spec = await _spec(venue, token, account_id)
    await venue.admin("POST", "/faults", {"userId": venue.user_id, "dropResponses": 1})
    sock = TradovateSocket(venue.ws_url, token, request_timeout_s=0.5)
    await sock.connect()
    try:
        order = _order(venue, account_id, "maybe-1", spec)
        with pytest.raises(RequestTimeout) as info:
            await sock.place_oso(order)
        assert info.value.retry_safe is False  # unknown outcome: resending could double it

        found = await sock.find_by_cl_ord_id(account_id, "maybe-1")
        missing = await sock.find_by_cl_ord_id(account_id, "never-sent")
    finally:
        await sock.close()

    assert found is not None
    assert found[1].clOrdId == "maybe-1"
    assert found[0].accountId == account_id
    assert missing is None
    orders = await venue.admin("GET", f"/orders?accountId={account_id}")
    assert [o["clOrdId"] for o in orders if o.get("parentId") is None] == ["maybe-1"]


@pytest.mark.integration
async def test_5xx_is_a_venue_error_retry_safe_only_for_reads(venue: Venue, token: str) -> None:
    account_id = venue.account_ids[0]
    order = _order(venue, account_id, "5xx", await _spec(venue, token, account_id))
    await venue.admin("POST", "/faults", {"errorStatus": 503, "errorCount": 2})

    with pytest.raises(VenueError) as write:
        await venue.rest.place_oso(token, order)
    with pytest.raises(VenueError) as read:
        await venue.rest.order_deps(token, account_id)

    assert (write.value.status, write.value.retry_safe) == (503, False)
    assert (read.value.status, read.value.retry_safe) == (503, True)


@pytest.mark.integration
async def test_account_failure_reasons(venue: Venue, token: str) -> None:
    venue.set_price(SIM_PRICE)
    account_id = venue.account_ids[0]
    spec = await _spec(venue, token, account_id)
    await venue.admin("POST", "/market", {"open": False})
    with pytest.raises(OrderRejected) as closed:
        await venue.rest.place_oso(token, _order(venue, account_id, "closed", spec))
    await venue.admin("POST", "/market", {"open": True})
    await venue.admin("POST", "/risk", {"accountId": account_id, "maxPosition": 1})
    await venue.rest.place_oso(token, _order(venue, account_id, "first", spec))
    with pytest.raises(OrderRejected) as maxed:
        await venue.rest.place_oso(token, _order(venue, account_id, "second", spec))

    assert closed.value.failure_reason == "SessionClosed"
    assert maxed.value.failure_reason == "MaxPosLimitReached"
    assert maxed.value.retry_safe is True


@pytest.mark.integration
async def test_shutdown_event_reaches_the_callback_and_the_socket_closes(
    venue: Venue, token: str
) -> None:
    shutdowns: list[Any] = []
    closes: list[str] = []
    sock = TradovateSocket(
        venue.ws_url,
        token,
        on_shutdown=lambda _s, d: shutdowns.append(d),
        on_close=lambda _s, reason: closes.append(reason),
    )
    await sock.connect()
    try:
        await venue.admin("POST", "/shutdown", {"reasonCode": "Maintenance"})
        await eventually(lambda: closes, what="socket closed after shutdown")
    finally:
        await sock.close()

    assert shutdowns == [
        {"reasonCode": "Maintenance", "reason": "Server is going to close this connection"}
    ]
    assert not sock.connected


@pytest.mark.integration
async def test_a_third_login_closes_the_oldest_sessions_socket(venue: Venue, token: str) -> None:
    if venue.sim is None:
        pytest.skip("a third login on demo would close someone's real session")
    closes: list[str] = []
    sock = TradovateSocket(venue.ws_url, token, on_close=lambda _s, r: closes.append(r))
    await sock.connect()
    try:
        await venue.rest.access_token_request(venue.login())
        await venue.rest.access_token_request(venue.login())
        await eventually(lambda: closes, what="oldest session's socket closed")
    finally:
        await sock.close()

    assert "Session closed" in closes[0]
    with pytest.raises(AuthError):
        await venue.rest.me(token)


@pytest.mark.integration
async def test_reconnecting_socket_comes_back_after_a_drop_with_a_fresh_token(
    venue: Venue, token: str
) -> None:
    tokens = [token]

    async def token_source() -> str:
        return tokens[-1]

    connected: list[TradovateSocket] = []

    async def on_connected(sock: TradovateSocket) -> None:
        await sock.sync(venue.user_id, venue.account_ids)
        connected.append(sock)

    keeper = ReconnectingSocket(
        venue.ws_url, token_source, on_connected=on_connected, backoff_s=0.01, max_backoff_s=0.05
    )
    keeper.start()
    try:
        await keeper.wait_connected(10)
        renewed = await venue.rest.renew_access_token(token)
        assert renewed.accessToken
        tokens.append(renewed.accessToken)
        await venue.admin("POST", "/sockets/drop", {"userId": venue.user_id})
        await eventually(lambda: len(connected) == 2, what="reconnected")
        sock = await keeper.wait_connected(10)
        orders = await sock.order_deps(venue.account_ids[0])
    finally:
        await keeper.stop()

    assert keeper.connects == 2
    assert all(o.accountId == venue.account_ids[0] for o in orders)


@pytest.mark.integration
async def test_modify_order_changes_a_working_order_and_too_late_after_the_fill(
    venue: Venue, token: str
) -> None:
    venue.set_price(SIM_PRICE)
    account_id = venue.account_ids[0]
    spec = await _spec(venue, token, account_id)
    placed = await venue.rest.place_order(
        token,
        wire.PlaceOrder(
            accountSpec=spec,
            accountId=account_id,
            action="Buy",
            symbol=venue.symbol,
            orderQty=1,
            orderType="Limit",
            price=SIM_PRICE - 400,
            clOrdId="resting",
        ),
    )
    assert placed.orderId is not None
    try:
        modified = await venue.rest.modify_order(
            token,
            wire.ModifyOrder(
                orderId=placed.orderId,
                orderQty=2,
                orderType="Limit",
                price=SIM_PRICE - 399,
                clOrdId="resting-mod",
            ),
        )
        assert modified.commandId is not None
        commands = await venue.rest.command_deps(token, placed.orderId)
        assert {"resting", "resting-mod"} <= {c.clOrdId for c in commands}
        with pytest.raises(OrderRejected) as off_tick:
            await venue.rest.modify_order(
                token,
                wire.ModifyOrder(
                    orderId=placed.orderId,
                    orderQty=1,
                    orderType="Limit",
                    price=SIM_PRICE - Decimal("1000.1"),
                ),
            )
        assert off_tick.value.failure_reason == "InvalidPrice"
    finally:
        await venue.rest.cancel_order(token, wire.CancelOrder(orderId=placed.orderId))
    with pytest.raises(OrderRejected) as late:
        await venue.rest.modify_order(
            token,
            wire.ModifyOrder(
                orderId=placed.orderId, orderQty=1, orderType="Limit", price=SIM_PRICE
            ),
        )
    assert late.value.failure_reason == "TooLate"


@pytest.mark.integration
async def test_oauth_code_exchange_both_paths_and_encodings(venue: Venue) -> None:
    redirect = "https://phalanx.example.com/oauth/callback"
    await venue.admin(
        "POST",
        "/oauth/clients",
        {"client_id": "phalanx", "client_secret": "s3cret", "redirect_uris": [redirect]},
    )
    assert venue.sim is not None

    async def code() -> str:
        async with httpx.AsyncClient(base_url=venue.sim.url) as http:
            query = {
                "response_type": "code",
                "client_id": "phalanx",
                "redirect_uri": redirect,
                "state": "st",
            }
            page = await http.get("/oauth", params=query)
            assert page.status_code == 200
            answer = await http.post(
                "/oauth", data={**query, "username": venue.username, "password": venue.password}
            )
            assert answer.status_code == 302
            location = httpx.URL(answer.headers["location"])
            assert location.params["state"] == "st"
            return location.params["code"]

    def request(c: str, secret: str = "s3cret") -> wire.OAuthTokenRequest:  # noqa: S107
        return wire.OAuthTokenRequest(
            code=c, redirect_uri=redirect, client_id="phalanx", client_secret=secret
        )

    form = await venue.rest.oauth_token(request(await code()))
    as_json = await venue.rest.oauth_token(
        request(await code()), path="/v1/auth/oauthtoken", encoding="json"
    )
    with pytest.raises(AuthError) as wrong:
        await venue.rest.oauth_token(request(await code(), secret="nope"))

    assert form.access_token
    assert form.token_type == "bearer"
    assert form.expires_in is not None
    assert as_json.access_token
    assert "invalid_client" in str(wrong.value)
    me = await venue.rest.me(form.access_token)
    assert me.userId == venue.user_id
    assert sorted(a.id for a in await venue.rest.account_list(as_json.access_token)) == sorted(
        venue.account_ids
    )


# -- the seed's cross-account bug -------------------------------------------------------------


@pytest.mark.integration
async def test_no_per_account_query_returns_another_accounts_orders(
    venue: Venue, token: str
) -> None:
    """Regression: the seed's fallback listed every account's orders, so one account modified
    another's take-profit. Every per-account query must only ever see its own account."""
    venue.set_price(SIM_PRICE)
    first, second = venue.account_ids[:2]
    placed: dict[int, wire.PlaceOsoResult] = {}
    for account_id in (first, second):
        spec = await _spec(venue, token, account_id)
        placed[account_id] = await venue.rest.place_oso(
            token, _order(venue, account_id, f"xacct-{account_id}", spec)
        )
    # the cross-account list really does hold both accounts' orders (the trap)
    everything = await venue.rest._get("order/list", token, list[wire.Order])
    assert {first, second} <= {o.accountId for o in everything}

    sock = TradovateSocket(venue.ws_url, token)
    await sock.connect()
    try:
        for account_id in (first, second):
            other = second if account_id == first else first
            own_ids = {placed[account_id].orderId, placed[account_id].oso1Id}
            foreign_ids = {placed[other].orderId, placed[other].oso1Id, placed[other].oso2Id}
            views = {
                "rest order/deps": await venue.rest.order_deps(token, account_id),
                "ws order/deps": await sock.order_deps(account_id),
            }
            for name, orders in views.items():
                assert {o.accountId for o in orders} == {account_id}, name
                assert own_ids <= {o.id for o in orders}, name
                assert not foreign_ids & {o.id for o in orders}, name
            for positions in (
                await venue.rest.position_deps(token, account_id),
                await sock.position_deps(account_id),
            ):
                assert {p.accountId for p in positions} <= {account_id}
            # a clOrdId of the other account is not found through this account
            assert await venue.rest.find_by_cl_ord_id(token, account_id, f"xacct-{other}") is None
            assert await sock.find_by_cl_ord_id(account_id, f"xacct-{other}") is None
            mine = await venue.rest.find_by_cl_ord_id(token, account_id, f"xacct-{account_id}")
            assert mine is not None
            assert mine[0].accountId == account_id
    finally:
        await sock.close()
