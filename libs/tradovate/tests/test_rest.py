"""Unit tests of the REST client against scripted venue answers (httpx.MockTransport)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from phalanx_tradovate import wire
from phalanx_tradovate.errors import (
    AuthError,
    ConnectionLost,
    LockoutError,
    OrderRejected,
    PenaltyError,
    RequestTimeout,
    VenueError,
    VenueUnreachable,
)
from phalanx_tradovate.rest import TradovateRest

BASE = "http://venue.test/v1"
LOGIN = wire.AccessTokenRequest(name="alice", password="pw", appId="phalanx", cid=8, sec="s")
OK_TOKEN = {
    "accessToken": "tok-1",
    "mdAccessToken": "md-1",
    "expirationTime": "2026-01-01T01:20:00.000Z",
    "userId": 42,
    "name": "alice",
    "userStatus": "Active",
    "hasLive": False,
}


class Recorder:
    """A scripted venue: answers from a list and records every request."""

    def __init__(self, *answers: httpx.Response | Callable[[httpx.Request], httpx.Response]):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        return answer(request) if callable(answer) else answer

    def body(self, index: int) -> Any:
        return wire.decode_json(self.requests[index].content)


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make(recorder: Recorder, sleep: FakeSleep | None = None) -> TradovateRest:
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    return TradovateRest(BASE, client=client, sleep=sleep or FakeSleep())


def _oso() -> wire.PlaceOso:
    return wire.PlaceOso(
        accountSpec="DEMO7",
        accountId=7,
        action="Buy",
        symbol="MNQZ5",
        orderQty=1,
        orderType="Market",
        clOrdId="sig-7",
        bracket1=wire.RestrainedOrderVersion(
            action="Sell", orderType="Limit", price=Decimal("100.25")
        ),
        bracket2=wire.RestrainedOrderVersion(
            action="Sell", orderType="Stop", stopPrice=Decimal("99.5")
        ),
    )


async def test_access_token_request_posts_credentials_and_decodes() -> None:
    rec = Recorder(httpx.Response(200, json=OK_TOKEN))
    resp = await make(rec).access_token_request(LOGIN)
    assert resp.accessToken == "tok-1"
    assert resp.userId == 42
    assert resp.expirationTime == "2026-01-01T01:20:00.000Z"
    req = rec.requests[0]
    assert req.method == "POST"
    assert str(req.url) == f"{BASE}/auth/accesstokenrequest"
    assert "authorization" not in req.headers
    assert rec.body(0) == {
        "name": "alice",
        "password": "pw",
        "appId": "phalanx",
        "cid": 8,
        "sec": "s",
    }


async def test_error_text_in_a_200_is_an_auth_error() -> None:
    rec = Recorder(httpx.Response(200, json={"errorText": "Incorrect username or password."}))
    with pytest.raises(AuthError, match="Incorrect username") as info:
        await make(rec).access_token_request(LOGIN)
    assert info.value.retry_safe is False


async def test_penalty_is_waited_out_once_and_resent_with_the_ticket() -> None:
    sleep = FakeSleep()
    rec = Recorder(
        httpx.Response(200, json={"p-ticket": "T1", "p-time": 7}),
        httpx.Response(200, json=OK_TOKEN),
    )
    resp = await make(rec, sleep).access_token_request(LOGIN)
    assert resp.accessToken == "tok-1"
    assert sleep.calls == [7.0]
    assert rec.body(1) == {**rec.body(0), "p-ticket": "T1"}


async def test_second_penalty_is_raised() -> None:
    sleep = FakeSleep()
    rec = Recorder(
        httpx.Response(200, json={"p-ticket": "T1", "p-time": 3}),
        httpx.Response(200, json={"p-ticket": "T2", "p-time": 5}),
    )
    with pytest.raises(PenaltyError) as info:
        await make(rec, sleep).access_token_request(LOGIN)
    assert (info.value.ticket, info.value.time_s, info.value.captcha) == ("T2", 5.0, False)
    assert len(rec.requests) == 2


async def test_captcha_penalty_raises_immediately() -> None:
    sleep = FakeSleep()
    rec = Recorder(httpx.Response(200, json={"p-ticket": "T", "p-time": 19, "p-captcha": True}))
    with pytest.raises(PenaltyError) as info:
        await make(rec, sleep).access_token_request(LOGIN)
    assert info.value.captcha is True
    assert info.value.retry_safe is False
    assert sleep.calls == []
    assert len(rec.requests) == 1


async def test_account_list_sends_bearer_and_decodes() -> None:
    rec = Recorder(
        httpx.Response(
            200,
            json=[
                {"id": 1, "name": "DEMO1", "userId": 42, "active": True, "extra": "x"},
                {"id": 2, "name": "DEMO2", "userId": 42, "active": True},
            ],
        )
    )
    accounts = await make(rec).account_list("tok")
    assert [(a.id, a.name) for a in accounts] == [(1, "DEMO1"), (2, "DEMO2")]
    assert rec.requests[0].headers["authorization"] == "Bearer tok"
    assert rec.requests[0].method == "GET"


async def test_place_oso_sends_numbers_and_returns_leg_ids() -> None:
    rec = Recorder(httpx.Response(200, json={"orderId": 10, "oso1Id": 11, "oso2Id": 12}))
    result = await make(rec).place_oso("tok", _oso())
    assert (result.orderId, result.oso1Id, result.oso2Id) == (10, 11, 12)
    assert b'"price":100.25' in rec.requests[0].content
    assert rec.body(0)["isAutomated"] is True
    assert str(rec.requests[0].url) == f"{BASE}/order/placeoso"


async def test_failure_reason_is_an_order_rejection() -> None:
    rec = Recorder(
        httpx.Response(200, json={"failureReason": "InvalidPrice", "failureText": "Invalid price"})
    )
    with pytest.raises(OrderRejected) as info:
        await make(rec).place_oso("tok", _oso())
    assert info.value.failure_reason == "InvalidPrice"
    assert info.value.failure_text == "Invalid price"
    assert info.value.retry_safe is True


async def test_penalty_on_an_order_is_raised_and_the_ticket_can_be_sent() -> None:
    rec = Recorder(
        httpx.Response(200, json={"p-ticket": "PT", "p-time": 2}),
        httpx.Response(200, json={"orderId": 1, "oso1Id": 2}),
    )
    rest = make(rec)
    with pytest.raises(PenaltyError) as info:
        await rest.place_oso("tok", _oso())
    assert info.value.retry_safe is True
    result = await rest.place_oso("tok", _oso(), p_ticket=info.value.ticket)
    assert result.orderId == 1
    assert rec.body(1) == {**rec.body(0), "p-ticket": "PT"}


@pytest.mark.parametrize("status", [423, 429])
async def test_lockout_statuses(status: int) -> None:
    rec = Recorder(httpx.Response(status, text="Too Many Requests"))
    with pytest.raises(LockoutError) as info:
        await make(rec).place_oso("tok", _oso())
    assert info.value.status == status


async def test_401_is_an_auth_error() -> None:
    rec = Recorder(httpx.Response(401, text="Access is denied"))
    with pytest.raises(AuthError) as info:
        await make(rec).renew_access_token("old")
    assert info.value.status == 401
    assert rec.requests[0].method == "GET"
    assert str(rec.requests[0].url) == f"{BASE}/auth/renewaccesstoken"


async def test_5xx_on_an_order_is_not_retry_safe_but_on_a_read_it_is() -> None:
    rec = Recorder(httpx.Response(503, text="down"), httpx.Response(500, text="oops"))
    rest = make(rec)
    with pytest.raises(VenueError) as order_err:
        await rest.place_oso("tok", _oso())
    assert (order_err.value.status, order_err.value.retry_safe) == (503, False)
    with pytest.raises(VenueError) as read_err:
        await rest.order_deps("tok", 7)
    assert (read_err.value.status, read_err.value.retry_safe) == (500, True)


async def test_deps_use_masterid() -> None:
    rec = Recorder(
        httpx.Response(200, json=[{"id": 5, "accountId": 7, "ordStatus": "Working"}]),
        httpx.Response(200, json=[{"id": 6, "accountId": 7, "netPos": 1}]),
        httpx.Response(200, json=[{"id": 8, "orderId": 5, "clOrdId": "sig-7"}]),
    )
    rest = make(rec)
    orders = await rest.order_deps("tok", 7)
    positions = await rest.position_deps("tok", 7)
    commands = await rest.command_deps("tok", 5)
    assert orders == [wire.Order(id=5, accountId=7, ordStatus="Working")]
    assert positions[0].netPos == 1
    assert commands[0].clOrdId == "sig-7"
    assert [str(r.url) for r in rec.requests] == [
        f"{BASE}/order/deps?masterid=7",
        f"{BASE}/position/deps?masterid=7",
        f"{BASE}/command/deps?masterid=5",
    ]


def _raise(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc

    return answer


async def test_read_timeout_on_an_order_is_an_unknown_outcome() -> None:
    rec = Recorder(_raise(httpx.ReadTimeout("slow")))
    with pytest.raises(RequestTimeout) as info:
        await make(rec).place_oso("tok", _oso())
    assert info.value.retry_safe is False


async def test_connect_error_means_nothing_was_sent() -> None:
    rec = Recorder(_raise(httpx.ConnectError("refused")))
    with pytest.raises(VenueUnreachable) as info:
        await make(rec).place_oso("tok", _oso())
    assert info.value.retry_safe is True


async def test_dropped_connection_mid_request() -> None:
    rec = Recorder(_raise(httpx.RemoteProtocolError("peer closed")))
    with pytest.raises(ConnectionLost) as info:
        await make(rec).cancel_order("tok", wire.CancelOrder(orderId=1))
    assert info.value.retry_safe is False


async def test_real_refused_port_is_venue_unreachable() -> None:
    rest = TradovateRest("http://127.0.0.1:9/v1", timeout_s=2.0)
    try:
        with pytest.raises(VenueUnreachable):
            await rest.access_token_request(LOGIN)
    finally:
        await rest.aclose()


async def test_liquidate_position_and_cancel_bodies() -> None:
    rec = Recorder(
        httpx.Response(200, json={"orderId": 77}),
        httpx.Response(200, json={"commandId": 78}),
    )
    rest = make(rec)
    liq = await rest.liquidate_position("tok", wire.LiquidatePosition(accountId=7, contractId=3))
    cancel = await rest.cancel_order("tok", wire.CancelOrder(orderId=5))
    assert liq.orderId == 77
    assert cancel.commandId == 78
    assert rec.body(0) == {"accountId": 7, "contractId": 3, "admin": False, "isAutomated": True}
    assert str(rec.requests[0].url) == f"{BASE}/order/liquidateposition"
