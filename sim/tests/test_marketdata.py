"""The market-data WebSocket: authorize first, subscribe/unsubscribe quotes, quote frames."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest_asyncio

from phalanx_sim import SimSettings, Simulator, running_simulator
from phalanx_sim.testing import SimSocket
from phalanx_testing.waiting import eventually

MakeUser = Callable[..., Awaitable[dict[str, Any]]]
Login = Callable[[str, str], Awaitable[dict[str, Any]]]


@pytest_asyncio.fixture
async def md_connect(sim: Simulator) -> AsyncIterator[Callable[[], Awaitable[SimSocket]]]:
    sockets: list[SimSocket] = []

    async def _connect() -> SimSocket:
        sock = await SimSocket.connect(sim.md_url)
        sockets.append(sock)
        return sock

    yield _connect
    for sock in sockets:
        await sock.close()


def _quotes(sock: SimSocket) -> list[dict[str, Any]]:
    return [q for e in sock.events if e.get("e") == "md" for q in e["d"]["quotes"]]


async def test_requests_before_authorize_are_refused_and_bad_tokens_too(
    md_connect: Callable[[], Awaitable[SimSocket]], make_user: MakeUser
) -> None:
    await make_user("alice")
    sock = await md_connect()

    early = await sock.request("md/subscribeQuote", {"symbol": "MNQZ6"})
    bad = await sock.authorize("not-a-token")

    assert sock.frames[0] == "o"
    assert early["s"] == 401
    assert bad["s"] == 401
    assert _quotes(sock) == []


async def test_md_token_authorizes_and_subscribe_sends_the_current_quote(
    sim: Simulator,
    md_connect: Callable[[], Awaitable[SimSocket]],
    make_user: MakeUser,
    login: Login,
) -> None:
    await make_user("bob")
    tokens = await login("bob", "pw")
    sim.set_price("MNQZ6", 21000.0)
    sock = await md_connect()

    authorized = await sock.authorize(tokens["mdAccessToken"])
    subscribed = await sock.request("md/subscribeQuote", {"symbol": "MNQZ6"})
    await eventually(lambda: len(_quotes(sock)) == 1)

    quote = _quotes(sock)[0]
    contract = sim.venue.contracts.resolve("MNQZ6")
    assert contract is not None
    assert authorized["s"] == 200
    assert subscribed["s"] == 200
    assert quote["contractId"] == contract.contract.id
    assert quote["timestamp"].endswith("Z")
    assert quote["entries"] == {
        "Bid": {"price": 20999.75, "size": 10},
        "Offer": {"price": 21000.25, "size": 10},
        "Trade": {"price": 21000.0, "size": 1},
    }


async def test_price_moves_are_quoted_until_unsubscribed(
    sim: Simulator,
    http: httpx.AsyncClient,
    md_connect: Callable[[], Awaitable[SimSocket]],
    make_user: MakeUser,
) -> None:
    user = await make_user("carol")
    sim.set_price("MNQZ6", 21000.0)
    sim.set_price("ESZ6", 6000.0)
    es = sim.venue.contracts.resolve("ESZ6")
    assert es is not None
    sock = await md_connect()
    assert (await sock.authorize(user["token"]))["s"] == 200
    assert (await sock.request("md/subscribeQuote", {"symbol": "MNQZ6"}))["s"] == 200
    assert (await sock.request("md/subscribeQuote", {"symbol": es.contract.id}))["s"] == 200
    await eventually(lambda: len(_quotes(sock)) == 2)

    moved = await http.post("/admin/prices", json={"symbol": "MNQZ6", "price": 21010.5})
    assert moved.status_code == 200
    await eventually(lambda: len(_quotes(sock)) == 3)
    gone = await sock.request("md/unsubscribeQuote", {"symbol": "MNQZ6"})
    sim.set_price("MNQZ6", 21020.0)
    sim.set_price("ESZ6", 6001.0)
    await eventually(lambda: len(_quotes(sock)) == 4)

    trades = [(q["contractId"], q["entries"]["Trade"]["price"]) for q in _quotes(sock)]
    mnq = trades[0][0]
    assert gone["s"] == 200
    # the move after unsubscribing is not quoted; the other contract's move is
    assert trades == [
        (mnq, 21000.0),
        (es.contract.id, 6000.0),
        (mnq, 21010.5),
        (es.contract.id, 6001.0),
    ]


async def test_unknown_contract_is_refused(
    md_connect: Callable[[], Awaitable[SimSocket]], make_user: MakeUser
) -> None:
    user = await make_user("dave")
    sock = await md_connect()
    assert (await sock.authorize(user["token"]))["s"] == 200

    unknown = await sock.request("md/subscribeQuote", {"symbol": "NOPEZ6"})

    assert unknown["s"] == 400
    assert _quotes(sock) == []


async def test_a_quiet_md_socket_gets_server_heartbeats() -> None:
    settings = SimSettings(
        sim_ws_heartbeat_s=0.1, sim_ws_idle_timeout_s=0, sim_ws_authorize_timeout_s=0
    )
    async with running_simulator(settings) as sim:
        sock = await SimSocket.connect(sim.md_url)
        try:
            await sock.heartbeat()
            await eventually(lambda: sock.heartbeats >= 2, what="two server heartbeats")

            assert sock.frames[0] == "o"
            assert not sock.closed
        finally:
            await sock.close()


async def test_an_md_socket_that_does_not_authorize_is_closed() -> None:
    settings = SimSettings(sim_ws_idle_timeout_s=0, sim_ws_authorize_timeout_s=0.3)
    async with running_simulator(settings) as sim:
        sock = await SimSocket.connect(sim.md_url)
        try:
            await eventually(lambda: sock.closed, what="closed for not authorizing")

            assert sock.close_frame == [1000, "Closed: not authorized"]
        finally:
            await sock.close()


async def test_a_revoked_token_closes_the_md_socket(
    sim: Simulator, md_connect: Callable[[], Awaitable[SimSocket]], make_user: MakeUser
) -> None:
    user = await make_user("frank")
    sock = await md_connect()
    assert (await sock.authorize(user["token"]))["s"] == 200

    session = sim.venue.authenticate(user["token"])
    assert session is not None
    sim.venue.revoke_token(session)
    await eventually(lambda: sock.closed, what="socket closed")

    assert sock.close_frame == [1000, "Closed: revoked"]
