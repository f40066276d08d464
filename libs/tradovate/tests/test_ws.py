"""Unit tests of the WebSocket client against the scripted fake socket server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio

from phalanx_testing.waiting import eventually
from phalanx_tradovate import wire
from phalanx_tradovate.errors import (
    AuthError,
    ConnectionLost,
    LockoutError,
    OrderRejected,
    PenaltyError,
    RequestTimeout,
    VenueUnreachable,
)
from phalanx_tradovate.frames import PropsEvent
from phalanx_tradovate.reconnecting import ReconnectingSocket
from phalanx_tradovate.testing import FakeRequest, FakeTradovateSocketServer
from phalanx_tradovate.ws import TradovateSocket

TOKEN = "good-token"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeTradovateSocketServer]:
    async with FakeTradovateSocketServer(token=TOKEN) as server:
        yield server


@pytest_asyncio.fixture
async def sock(fake: FakeTradovateSocketServer) -> AsyncIterator[TradovateSocket]:
    s = TradovateSocket(fake.url, TOKEN, request_timeout_s=2.0)
    await s.connect()
    yield s
    await s.close()


def _oso() -> wire.PlaceOso:
    return wire.PlaceOso(
        accountSpec="DEMO7",
        accountId=7,
        action="Sell",
        symbol="MNQZ5",
        orderQty=3,
        orderType="Limit",
        price=Decimal("21000.5"),
        clOrdId="sig-7",
        bracket1=wire.RestrainedOrderVersion(
            action="Buy", orderType="Limit", price=Decimal("20950")
        ),
    )


async def test_connect_authorizes_with_the_raw_token(
    fake: FakeTradovateSocketServer, sock: TradovateSocket
) -> None:
    assert sock.connected
    (auth,) = fake.requests_to("authorize")
    assert (auth.request_id, auth.query, auth.body) == (0, "", TOKEN)


async def test_wrong_token_raises_auth_error_and_closes(fake: FakeTradovateSocketServer) -> None:
    closed: list[str] = []
    s = TradovateSocket(fake.url, "bad", on_close=lambda _s, reason: closed.append(reason))
    with pytest.raises(AuthError, match="Invalid access token") as info:
        await s.connect()
    assert info.value.status == 401
    assert not s.connected
    assert closed == ["authorize failed"]


async def test_unreachable_socket() -> None:
    s = TradovateSocket("ws://127.0.0.1:9/v1/websocket", TOKEN, connect_timeout_s=2.0)
    with pytest.raises(VenueUnreachable):
        await s.connect()
    assert not s.connected


async def test_heartbeat_is_sent_on_a_timer(fake: FakeTradovateSocketServer) -> None:
    s = TradovateSocket(fake.url, TOKEN, heartbeat_s=0.02)
    await s.connect()
    try:
        await eventually(lambda: fake.heartbeats >= 3, what="three client heartbeats")
    finally:
        await s.close()


async def test_place_oso_over_ws_uses_unique_ids_and_decodes(
    fake: FakeTradovateSocketServer, sock: TradovateSocket
) -> None:
    ids = iter(range(100, 200))
    fake.on(
        "order/placeoso",
        lambda req: (200, {"orderId": next(ids), "oso1Id": 500, "oso2Id": None}),
    )
    first, second = await asyncio.gather(sock.place_oso(_oso()), sock.place_oso(_oso()))
    assert {first.orderId, second.orderId} == {100, 101}
    assert first.oso1Id == 500
    reqs = fake.requests_to("order/placeoso")
    assert sorted(r.request_id for r in reqs) == [1, 2]
    body = reqs[0].json()
    assert body["price"] == Decimal("21000.5")
    assert body["isAutomated"] is True
    assert body["bracket1"] == {"action": "Buy", "orderType": "Limit", "price": 20950}


async def test_dropped_response_is_a_request_timeout_not_retry_safe(
    fake: FakeTradovateSocketServer,
) -> None:
    fake.on("order/placeoso", lambda req: None)
    s = TradovateSocket(fake.url, TOKEN, request_timeout_s=0.2)
    await s.connect()
    try:
        with pytest.raises(RequestTimeout) as info:
            await s.place_oso(_oso())
        assert info.value.retry_safe is False
        assert s.connected  # a lost response does not kill the socket
    finally:
        await s.close()


async def test_read_timeout_is_retry_safe(fake: FakeTradovateSocketServer) -> None:
    fake.on("order/deps", lambda req: None)
    s = TradovateSocket(fake.url, TOKEN, request_timeout_s=0.2)
    await s.connect()
    try:
        with pytest.raises(RequestTimeout) as info:
            await s.order_deps(7)
        assert info.value.retry_safe is True
    finally:
        await s.close()


async def test_ws_429_is_a_lockout(fake: FakeTradovateSocketServer, sock: TradovateSocket) -> None:
    fake.on("order/placeoso", lambda req: (429, None))
    with pytest.raises(LockoutError) as info:
        await sock.place_oso(_oso())
    assert info.value.status == 429


async def test_ws_penalty_in_d_and_resend_with_ticket(
    fake: FakeTradovateSocketServer, sock: TradovateSocket
) -> None:
    answers: list[Any] = [
        (200, {"p-ticket": "PT", "p-time": 4}),
        (200, {"orderId": 9, "oso1Id": 10}),
    ]
    fake.on("order/placeoso", lambda req: answers.pop(0))
    with pytest.raises(PenaltyError) as info:
        await sock.place_oso(_oso())
    assert (info.value.ticket, info.value.time_s) == ("PT", 4.0)
    result = await sock.place_oso(_oso(), p_ticket=info.value.ticket)
    assert result.orderId == 9
    first, second = fake.requests_to("order/placeoso")
    assert second.json() == {**first.json(), "p-ticket": "PT"}


async def test_failure_reason_over_ws(
    fake: FakeTradovateSocketServer, sock: TradovateSocket
) -> None:
    fake.on(
        "order/placeoso",
        lambda req: (200, {"failureReason": "InvalidPrice", "failureText": "off tick"}),
    )
    with pytest.raises(OrderRejected) as info:
        await sock.place_oso(_oso())
    assert info.value.failure_reason == "InvalidPrice"


async def test_access_denied_text_is_auth_error(
    fake: FakeTradovateSocketServer, sock: TradovateSocket
) -> None:
    fake.on("order/cancelorder", lambda req: (401, "Access is denied"))
    with pytest.raises(AuthError):
        await sock.cancel_order(wire.CancelOrder(orderId=1))


async def test_deps_queries(fake: FakeTradovateSocketServer, sock: TradovateSocket) -> None:
    def deps(req: FakeRequest) -> tuple[int, Any]:
        return 200, [{"id": 1, "accountId": int(req.query.split("=")[1])}]

    fake.on("order/deps", deps)
    fake.on("command/deps", lambda req: (200, [{"id": 3, "orderId": 1, "clOrdId": "c"}]))
    fake.on("contract/item", lambda req: (200, {"id": 4, "name": "MNQZ5"}))
    assert await sock.order_deps(12) == [wire.Order(id=1, accountId=12)]
    assert (await sock.command_deps(1))[0].clOrdId == "c"
    assert await sock.contract_item(4) == wire.Contract(id=4, name="MNQZ5")
    assert [r.query for r in fake.requests[1:]] == ["masterid=12", "masterid=1", "id=4"]


async def test_props_events_are_routed_and_decoded(fake: FakeTradovateSocketServer) -> None:
    seen: list[PropsEvent] = []
    s = TradovateSocket(fake.url, TOKEN, on_props=seen.append)
    await s.connect()
    try:
        await fake.push_props(
            "fill", "Created", [{"id": 1, "orderId": 5, "qty": 1, "price": Decimal("1.25")}]
        )
        await fake.push_props("order", "Updated", {"id": 5, "ordStatus": "Filled"})
        await eventually(lambda: len(seen) == 2, what="two props events")
    finally:
        await s.close()
    assert seen[0].decode_entity() == wire.Fill(id=1, orderId=5, qty=1, price=Decimal("1.25"))
    assert (seen[1].entity_type, seen[1].event_type) == ("order", "Updated")
    assert seen[1].decode_entity() == wire.Order(id=5, ordStatus="Filled")


async def test_a_failing_props_callback_does_not_kill_the_reader(
    fake: FakeTradovateSocketServer,
) -> None:
    seen: list[int] = []

    def on_props(event: PropsEvent) -> None:
        if event.entity["id"] == 1:
            raise ValueError("boom")
        seen.append(event.entity["id"])

    s = TradovateSocket(fake.url, TOKEN, on_props=on_props)
    await s.connect()
    try:
        await fake.push_props("order", "Created", [{"id": 1}, {"id": 2}])
        await eventually(lambda: seen == [2], what="second entity delivered")
        assert s.connected
    finally:
        await s.close()


async def test_drop_fails_pending_requests_and_calls_on_close(
    fake: FakeTradovateSocketServer,
) -> None:
    closed: list[str] = []
    fake.on("order/placeoso", lambda req: None)
    s = TradovateSocket(fake.url, TOKEN, on_close=lambda _s, r: closed.append(r))
    await s.connect()
    pending = asyncio.ensure_future(s.place_oso(_oso()))
    await eventually(lambda: fake.requests_to("order/placeoso"), what="order reached the venue")
    await fake.drop()
    with pytest.raises(ConnectionLost) as info:
        await pending
    assert info.value.retry_safe is False
    assert not s.connected
    assert len(closed) == 1
    with pytest.raises(ConnectionLost) as after:
        await s.order_deps(1)
    assert after.value.retry_safe is True  # nothing was sent
    await s.close()
    assert len(closed) == 1


async def test_shutdown_event_is_reported(fake: FakeTradovateSocketServer) -> None:
    got: list[Any] = []
    s = TradovateSocket(fake.url, TOKEN, on_shutdown=lambda _s, d: got.append(d))
    await s.connect()
    try:
        await fake.push({"e": "shutdown", "d": {"reasonCode": "Maintenance", "reason": "bye"}})
        await eventually(lambda: got, what="shutdown callback")
    finally:
        await s.close()
    assert got == [{"reasonCode": "Maintenance", "reason": "bye"}]
    assert s.shutdown_reason == {"reasonCode": "Maintenance", "reason": "bye"}


async def test_sync_sends_explicit_entity_types_and_returns_snapshot(
    fake: FakeTradovateSocketServer, sock: TradovateSocket
) -> None:
    fake.on(
        "user/syncrequest",
        lambda req: (200, {"accounts": [{"id": 7, "name": "DEMO7"}], "positions": []}),
    )
    snap = await sock.sync(42, account_ids=[7])
    assert snap.accounts == [wire.Account(id=7, name="DEMO7")]
    (req,) = fake.requests_to("user/syncrequest")
    assert req.json() == {
        "users": [42],
        "accounts": [7],
        "splitResponses": True,
        "entityTypes": list(wire.DEFAULT_ENTITY_TYPES),
    }


async def test_reauthorize_sends_the_new_token(
    fake: FakeTradovateSocketServer, sock: TradovateSocket
) -> None:
    fake.token = "renewed"
    await sock.reauthorize("renewed")
    assert [r.body for r in fake.requests_to("authorize")] == [TOKEN, "renewed"]
    with pytest.raises(AuthError):
        await sock.reauthorize("stale")


async def test_reconnecting_socket_reconnects_with_a_fresh_token(
    fake: FakeTradovateSocketServer,
) -> None:
    tokens = iter([TOKEN, TOKEN, TOKEN])
    connected: list[TradovateSocket] = []

    async def source() -> str:
        return next(tokens)

    async def on_connected(s: TradovateSocket) -> None:
        connected.append(s)

    keeper = ReconnectingSocket(fake.url, source, on_connected=on_connected, backoff_s=0.01)
    keeper.start()
    try:
        first = await keeper.wait_connected(5.0)
        await fake.drop()
        await eventually(lambda: keeper.connects == 2, what="second connection")
        second = await keeper.wait_connected(5.0)
        assert second is not first
        assert second.connected
        assert connected == [first, second]
    finally:
        await keeper.stop()
